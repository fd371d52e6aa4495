#!/bin/bash
# Threads (DESIGN "Threads"; interception surface §4.13): any thread may
# read while another writes.  tests/helpers/thread_conns: a server thread
# accepts N=16 connections; each connection has a reader thread and a writer
# thread running at once (write/send/writev/sendmsg and
# read/recv/readv/recvmsg, 1 B..64 KiB), ~4 MB each way, every byte checked,
# half-close at the end of each direction.  Client side in a separate
# sealed process, then everything in one sealed process.  With SAN=tsan
# (build/tsan shim, TSan runtime first in PRELOAD) no ThreadSanitizer
# report may appear.  And shutdown() from another thread wakes a blocked
# reader or poller (tests/helpers/shutdown_wake).
. "$(dirname "$0")/lib.sh"

HELPER=$B/tests/thread_conns
NCONN=${THR_CONNS:-16}
BYTES=${THR_BYTES:-4000000}

scenario_setup() {
    [ -x "$HELPER" ] || echo "44-threads: $HELPER missing (make helpers)" >&2
}

setup_policy() {
    loopback_policy "$1" || return 1
}

# assert_side ROLE FILE: N connections OK on that side, all with the right
# byte counts.
assert_side() {
    local ok
    ok=$(grep -c "^$1 conn [0-9]* OK in=$BYTES out=$BYTES fnv=" "$2")
    assertEquals "$1: connections checked OK" "$NCONN" "$ok"
    assertFileNotContains "$1: no failed connection" "$2" "^$1 conn .* FAIL"
}

# assert_no_tsan FILE...: no ThreadSanitizer report (only under SAN=tsan).
assert_no_tsan() {
    local f
    [ "$SAN" = tsan ] || return 0
    for f in "$@"; do
        assertFileNotContains "no ThreadSanitizer report in ${f##*/}" "$f" "WARNING: ThreadSanitizer"
    done
}

test_server_and_client_processes() {
    local port rc=0
    [ -x "$HELPER" ] || { fail "$HELPER missing"; return 0; }
    port=$(free_port)
    setup_policy "$port" || { fail "policy"; return 0; }
    bg srv sealed "$HELPER" server "$port" "$NCONN" "$BYTES"
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    sealed "$HELPER" client "$port" "$NCONN" "$BYTES" >"$TD/cli.out" 2>"$TD/cli.err" || rc=$?
    assertEquals "client exit status" 0 "$rc"
    rc=0
    wait_bg srv || rc=$?
    assertEquals "server exit status" 0 "$rc"
    assert_side server "$TD/srv.out"
    assert_side client "$TD/cli.out"
    assertFileNotContains "no shim failure in the server" "$TD/srv.err" "failed|truncat"
    assertFileNotContains "no shim failure in the client" "$TD/cli.err" "failed|truncat"
    assert_no_tsan "$TD/srv.err" "$TD/cli.err"
}

# The same with 256 KB each way and a capture (tcpdump drops packets at the
# full rate, so the big runs are not captured).
test_captured_small() {
    local port rc=0 bytes=262144
    [ -x "$HELPER" ] || { fail "$HELPER missing"; return 0; }
    port=$(free_port)
    setup_policy "$port" || { fail "policy"; return 0; }
    bg srv sealed "$HELPER" server "$port" "$NCONN" "$bytes"
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    cap_start "$port" || { fail "no capture"; return 0; }
    sealed "$HELPER" client "$port" "$NCONN" "$bytes" >"$TD/cli.out" 2>"$TD/cli.err" || rc=$?
    assertEquals "client exit status" 0 "$rc"
    rc=0
    wait_bg srv || rc=$?
    assertEquals "server exit status" 0 "$rc"
    cap_stop
    assertEquals "client: connections OK" "$NCONN" "$(grep -c '^client conn [0-9]* OK' "$TD/cli.out")"
    assert_no_tsan "$TD/srv.err" "$TD/cli.err"
    cap_check --preface "$PREFACE_HEX" --min-conns "$NCONN" --min-bytes $((2 * NCONN * bytes))
    assertEquals "capture: every connection sealed" 0 $?
}

test_one_process_both_sides() {
    local port rc=0
    [ -x "$HELPER" ] || { fail "$HELPER missing"; return 0; }
    port=$(free_port)
    setup_policy "$port" || { fail "policy"; return 0; }
    sealed "$HELPER" both "$port" "$NCONN" "$BYTES" >"$TD/both.out" 2>"$TD/both.err" || rc=$?
    assertEquals "exit status" 0 "$rc"
    assert_side server "$TD/both.out"
    assert_side client "$TD/both.out"
    assertFileNotContains "no shim failure" "$TD/both.err" "failed|truncat"
    assert_no_tsan "$TD/both.err"
}

# shutdown() from another thread wakes a thread blocked on the socket in
# read, recv, poll or epoll_wait, as on TCP (tests/helpers/shutdown_wake.c):
# the same outcome sealed as plain, never "STALL".  The shim held the read
# lock across a blocking read and kept SHUT_RD to itself, so shutdown()
# waited for the reader and no waiter was ever woken.
test_shutdown_wakes_blocked_thread() {
    local wake=$B/tests/shutdown_wake port pport mode how plain seal rc
    [ -x "$wake" ] || { fail "$wake missing"; return 0; }
    port=$(free_port)
    pport=$(free_port)
    setup_policy "$port" || { fail "policy"; return 0; }
    cap_start "$port" || { fail "no capture"; return 0; }
    for mode in read recv poll epoll; do
        for how in rd rdwr; do
            plain=$(timeout 20 "$wake" "$pport" "$mode" "$how" 2>&1 | tr '\n' ' ')
            rc=0
            seal=$(sealed timeout 20 "$wake" "$port" "$mode" "$how" 2>"$TD/wake.err" |
                tr '\n' ' ') || rc=$?
            assertContains "$mode/$how plain TCP: woken" "$plain" "waiter $mode"
            assertEquals "$mode/$how: sealed as plain TCP" "$plain" "$seal"
            assertNotContains "$mode/$how: no stall" "$seal" "STALL"
            assert_no_tsan "$TD/wake.err"
        done
    done
    cap_stop
    cap_check --preface "$PREFACE_HEX" --min-conns 8 >/dev/null
    assertEquals "capture: every connection sealed" 0 $?
}

. shunit2
