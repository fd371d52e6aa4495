#!/bin/bash
# memcached sealed (interception surface §1, §4.13): the main thread accepts
# (accept4 SOCK_NONBLOCK) and hands each connection to a worker thread
# (-t 4) that serves it with libevent/epoll, read and sendmsg with several
# iovecs.  A sealed python client (pymemcache, tests/programs/mc_client.py)
# stores and reads back a 512 KiB value, and 200 small values over 3
# connections; values are checked and the capture shows no plaintext.
. "$(dirname "$0")/lib.sh"

MC=$(command -v memcached || echo /usr/bin/memcached)
CLI=$PROGS/mc_client.py

scenario_setup() {
    [ -x "$MC" ] || echo "45-memcached: memcached missing (make install-deps)" >&2
    env -u LD_PRELOAD "$PY" -c 'import pymemcache' 2>/dev/null ||
        echo "45-memcached: python3-pymemcache missing (make install-deps)" >&2
}

# start_mc: sealed memcached on a free port (PORT), capture running.
start_mc() {
    local user=()
    [ -x "$MC" ] || { fail "memcached missing"; return 1; }
    PORT=$(free_port)
    loopback_policy "$PORT" || { fail "no key"; return 1; }
    # memcached refuses to run as root without -u
    [ "$(id -u)" = 0 ] && user=(-u root)
    bg mc sealed "$MC" -l 127.0.0.1 -p "$PORT" -U 0 -t 4 -m 64 "${user[@]}"
    wait_listen "$PORT" mc || { fail "memcached did not listen"; return 1; }
    cap_start "$PORT" || { fail "no capture"; return 1; }
}

# finish M: stop memcached, check it stayed up and the capture.
finish() {
    assertTrue "memcached still running" "running mc"
    stop_bg mc
    cap_stop
    assertFileNotContains "no shim failure in memcached" "$TD/mc.err" "failed|truncat"
    assertFileNotContains "no shim failure in the client" "$TD/cli.err" "failed|truncat"
    cap_check --preface "$PREFACE_HEX" --marker "$1" --min-conns "$2" --min-bytes "$3"
    assertEquals "capture: sealed, no plaintext value" 0 $?
    cap_check --marker "STORED" >/dev/null
    assertEquals "capture: no plaintext protocol reply" 0 $?
}

test_big_value() {
    local m rc=0
    start_mc || return 0
    m=$(newmarker)
    sealed "$PY" "$CLI" "$PORT" "$m" big >"$TD/cli.out" 2>"$TD/cli.err" || rc=$?
    assertEquals "client exit status" 0 "$rc"
    assertFileContains "512 KiB value stored and read back on two connections" "$TD/cli.out" "^big OK [0-9a-f]{64}\$"
    finish "$m" 2 $((3 * 512 * 1024))
}

test_small_values_three_connections() {
    local m rc=0
    start_mc || return 0
    m=$(newmarker)
    sealed "$PY" "$CLI" "$PORT" "$m" small >"$TD/cli.out" 2>"$TD/cli.err" || rc=$?
    assertEquals "client exit status" 0 "$rc"
    assertFileContains "200 values set and read back across connections" "$TD/cli.out" "^small OK 200\$"
    finish "$m" 3 20000
}

# 4 client processes at once (12 small-value connections and 4 big-value
# pairs spread over memcached's 4 worker threads).
test_parallel_clients() {
    local m i rc
    start_mc || return 0
    m=$(newmarker)
    for i in 1 2 3 4; do
        bg "small$i" sealed "$PY" "$CLI" "$PORT" "$m" small "c$i-"
        bg "big$i" sealed "$PY" "$CLI" "$PORT" "$m" big "c$i-"
    done
    for i in 1 2 3 4; do
        rc=0
        wait_bg "small$i" || rc=$?
        assertEquals "small client $i exit status" 0 "$rc"
        assertFileContains "small client $i values" "$TD/small$i.out" "^small OK 200\$"
        rc=0
        wait_bg "big$i" || rc=$?
        assertEquals "big client $i exit status" 0 "$rc"
        assertFileContains "big client $i value" "$TD/big$i.out" "^big OK [0-9a-f]{64}\$"
    done
    cat "$TD"/small*.err "$TD"/big*.err >"$TD/cli.err" 2>/dev/null
    finish "$m" 20 $((4 * 3 * 512 * 1024))
}

. shunit2
