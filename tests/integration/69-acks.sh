#!/bin/bash
# TCP's delayed-ACK state as over plain TCP.  A socket that sends data
# soon after it received some counts that as a reply and delays its ACKs
# from then on.  The handshake is such an exchange, so a server that speaks
# first (rsync's daemon greeting, SMTP, FTP) delayed the ACK of its
# client's first bytes, and a client that then wrote again without
# TCP_NODELAY waited 40 ms under Nagle: `rsync --delete` to a sealed
# rsync daemon took 160-180 ms where plain took 95-140.  The check counts
# the delayed ACKs TCP sends (TcpExt DelayedACKs) in a network namespace
# made for the run (unshare -n), so that no other connection counts:
# none over plain TCP, none sealed (one before the fix).  Skips where
# unshare -n is not permitted.
. "$(dirname "$0")/lib.sh"

PROG=$PROGS/greet_first.py

# in_ns CMD...: CMD in a new network namespace with its loopback up.
in_ns() {
    timeout -k 5 "$TMO" unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$@"
}

ns_usable() {
    in_ns true 2>/dev/null && return 0
    echo "    SKIPPED: unshare -n (or ip) is not usable here"
    startSkipping
    return 1
}

test_server_speaks_first_acks_as_tcp() {
    ns_usable || return 0
    PORT=$(free_port)
    loopback_policy "$PORT" || { fail "no key"; return 0; }
    in_ns "$PY" "$PROG" "$PORT" >"$TD/plain.out" 2>"$TD/plain.err"
    assertEquals "plain run exit status" 0 $?
    assertEquals "plain TCP: answer, and no delayed ACK" \
        "greeting=HELLO reply=ok delayed_acks=0" "$(cat "$TD/plain.out")"
    in_ns env LD_PRELOAD="$PRELOAD" SOCKSEAL_POLICY="$POLICY" SOCKSEAL_LOG=info \
        "${SAN_ENV[@]}" \
        "$PY" "$PROG" "$PORT" >"$TD/sealed.out" 2>"$TD/sealed.err"
    assertEquals "sealed run exit status" 0 $?
    assertEquals "sealed: the same" \
        "greeting=HELLO reply=ok delayed_acks=0" "$(cat "$TD/sealed.out")"
    grep -q "sealed connection to" "$TD/sealed.err"
    assertEquals "the connection was sealed" 0 $?
}

. shunit2
