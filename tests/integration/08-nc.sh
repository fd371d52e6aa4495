#!/bin/bash
# netcat-openbsd, both ends sealed: non-blocking connect (EINPROGRESS, poll,
# SO_ERROR), accept4(SOCK_NONBLOCK), poll-driven I/O, -N half-close.
. "$(dirname "$0")/lib.sh"

setup_port() {
    PORT=$(free_port)
    loopback_policy "$PORT" || return 1
}

test_nc_upload_with_half_close() {
    setup_port || { fail "no key"; return 0; }
    mkdata "$TD/in" 3000000
    bg srv sealed sh -c "exec nc -l 127.0.0.1 $PORT >'$TD/out' </dev/null"
    wait_listen "$PORT" srv || { fail "nc -l did not listen"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    sealed nc -N 127.0.0.1 "$PORT" <"$TD/in" >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "nc -N client exit status" 0 $?
    wait_bg srv
    assertEquals "nc -l exit status" 0 $?
    cap_stop
    assertSameFile "upload" "$TD/in" "$TD/out"
    cap_check --preface "$PREFACE_HEX" --min-bytes 3000000
    assertEquals "sealed on the wire" 0 $?
}

test_nc_server_speaks_first() {
    setup_port || { fail "no key"; return 0; }
    mkdata "$TD/down" 1000000
    bg srv sealed sh -c "exec nc -N -l 127.0.0.1 $PORT <'$TD/down'"
    wait_listen "$PORT" srv || { fail "nc -l did not listen"; return 0; }
    sealed nc -d 127.0.0.1 "$PORT" >"$TD/out" 2>"$TD/cli.err"
    assertEquals "nc client exit status" 0 $?
    wait_bg srv
    assertEquals "nc -l exit status" 0 $?
    assertSameFile "download" "$TD/down" "$TD/out"
}

test_nc_against_peer() {
    mkkey k >/dev/null || { fail "no key"; return 0; }
    mkdata "$TD/in" 1500000
    peer_listen p --key "$TD/k.key" --echo || { fail "peer did not listen"; return 0; }
    write_policy <<EOF
key k $TD/k.key
connect 127.0.0.1:$PEER_PORT key=k
EOF
    sealed nc -N 127.0.0.1 "$PEER_PORT" <"$TD/in" >"$TD/out" 2>"$TD/cli.err"
    assertEquals "nc -N client exit status" 0 $?
    wait_bg p
    assertEquals "peer exit status" 0 $?
    assertSameFile "echo by the peer" "$TD/in" "$TD/out"
}

. shunit2
