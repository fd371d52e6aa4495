#!/bin/bash
# A sealed redis-server (epoll, non-blocking) under a flood of stalled
# handshakes from an unshimmed client: 300 connections that send nothing,
# 50 that send the preface and part of message 1, 50 that send garbage.
# Sealed clients are still served while they are held, and the accept rule's
# handshake timeout makes the server end every stalled one.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/redis_lib.sh"

FLOOD=$PROGS/flood_stall.py
N_SILENT=300
N_PARTIAL=50
N_GARBAGE=50
N_ALL=$((N_SILENT + N_PARTIAL + N_GARBAGE))

# ports_of KIND...: the local ports of the flood connections of those kinds
ports_of() {
    local k
    for k in "$@"; do sed -n "s/^$k //p" "$TD/flood.ports"; done | sort -u
}

# logged_ports REASON-REGEX: peer ports of the server's failed-connection log
# lines for the accept rule with that reason
logged_ports() {
    sed -nE "s/.*connection from 127\\.0\\.0\\.1:([0-9]+) \\(rule [^)]*$ACCEPT_LINE\\) failed: ($1).*/\\1/p" \
        "$TD/srv.err" | sort -u
}

# assert_all_logged MSG REASON-REGEX KIND...: every such connection is in the log
assert_all_logged() {
    local msg=$1 why=$2 missing
    shift 2
    missing=$(comm -23 <(ports_of "$@") <(logged_ports "$why") | wc -l)
    assertEquals "$msg: connections not in the server log" 0 "$missing"
}

# wait_clients N: until redis reports N connected clients (INFO is one).
wait_clients() {
    local _
    for _ in $(seq 1 100); do
        rcli INFO clients >"$TD/info.out" 2>"$TD/info.err"
        [ "$(info_field "$TD/info.out" connected_clients)" = "$1" ] && return 0
        sleep 0.1
    done
    return 1
}

test_stalled_handshakes_do_not_stall_redis_and_time_out() {
    local held
    PORT=$(free_port)
    redis_policy "$PORT" "timeout=2000" || { fail "no key"; return 0; }
    SOCKSEAL_LOG=info redis_start "$PORT" || { fail "redis-server did not start"; return 0; }

    bg flood plain "$PY" "$FLOOD" 127.0.0.1 "$PORT" --silent "$N_SILENT" \
        --partial "$N_PARTIAL" --garbage "$N_GARBAGE" --wait 15 --ports "$TD/flood.ports"
    wait_line "$TD/flood.out" "^opened $N_ALL\$" 20 || { fail "flood: connections not opened"; return 0; }

    # while they are held: sealed clients are served
    rcli PING >"$TD/ping.out" 2>"$TD/ping.err"
    assertEquals "PING exit status" 0 $?
    assertEquals "PING reply" PONG "$(cat "$TD/ping.out")"
    rcli SET k flood-value >"$TD/set.out" 2>"$TD/set.err"
    assertEquals "SET reply" OK "$(cat "$TD/set.out")"
    rcli GET k >"$TD/get.out" 2>"$TD/get.err"
    assertEquals "GET reply" flood-value "$(cat "$TD/get.out")"
    held=$((N_SILENT + N_PARTIAL - $(grep -cE '^closed (silent|partial) ' "$TD/flood.out")))
    echo "    (stalled handshakes still held when the clients finished: $held of $((N_SILENT + N_PARTIAL)))"
    assertTrue "redis-server still running" "running srv"

    # the handshake timeout (2 s) ends every one of them (the flood client
    # waits up to 15 s after opening them and reports what the server did)
    wait_bg flood
    assertEquals "flood: the server ended every connection" 0 $?
    assertFileContains "flood: all $N_ALL ended by the server, none sent data" "$TD/flood.out" \
        "^done closed=$N_ALL open=0 eof=[0-9]+ reset=[0-9]+ data=0\$"
    assertEquals "flood: silent connections ended by the server" "$N_SILENT" \
        "$(grep -cE '^closed silent [0-9]+ (eof|reset) ' "$TD/flood.out")"
    assertEquals "flood: partial handshakes ended by the server" "$N_PARTIAL" \
        "$(grep -cE '^closed partial [0-9]+ (eof|reset) ' "$TD/flood.out")"
    assertEquals "flood: garbage connections ended by the server" "$N_GARBAGE" \
        "$(grep -cE '^closed garbage [0-9]+ (eof|reset) ' "$TD/flood.out")"

    # the log names each peer and the accept rule, with the reason
    assert_all_logged "silent and partial: handshake timed out" "handshake timed out" silent partial
    assert_all_logged "garbage: handshake failed" ".+" garbage

    # redis is still serving, and has freed every flood connection
    rcli GET k >"$TD/get2.out" 2>"$TD/get2.err"
    assertEquals "GET after the flood" flood-value "$(cat "$TD/get2.out")"
    wait_clients 1
    assertEquals "connected_clients back to 1 (the INFO client)" 1 \
        "$(info_field "$TD/info.out" connected_clients)"
    assertTrue "redis-server still running" "running srv"
}

. shunit2
