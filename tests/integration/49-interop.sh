#!/bin/bash
# Interop for programs the shim cannot reach: the example peer's forward
# relay (PROTOCOL.md) carries a plain program's connection to a sealed
# server, and a sealed client's to a plain server; the sealed leg carries the
# preface and no plaintext; failures on the sealed leg reach the plain
# program as a reset, never as a clean end of file.
. "$(dirname "$0")/lib.sh"

# fwd_start ARGS...: the relay on 127.0.0.1, kernel-chosen port, one
# connection; sets FWD_PORT.
fwd_start() {
    rm -f "$TD/fwd.port"
    bg fwd peer forward --listen 127.0.0.1:0 --port-file "$TD/fwd.port" \
        --count 1 --timeout 20 "$@"
    wait_file "$TD/fwd.port" 10 || return 1
    FWD_PORT=$(cat "$TD/fwd.port")
}

test_plain_client_through_relay_to_sealed_server() {
    local port m
    port=$(free_port)
    mkkey k >/dev/null || { fail "no key"; return 0; }
    write_policy <<EOF
key k $TD/k.key
accept 127.0.0.1:$port key=k
EOF
    m=$(newmarker)
    mkmarked "$TD/in" 2000000 "$m"
    bg srv sealed socat -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" EXEC:cat
    wait_listen "$port" srv || { fail "sealed server did not listen"; return 0; }
    fwd_start --connect "127.0.0.1:$port" --key "$TD/k.key" ||
        { fail "relay did not listen"; return 0; }
    cap_start "$port" || { fail "tcpdump did not start"; return 0; }
    # an unshimmed client, as a static binary would be
    plain env -u LD_PRELOAD socat -t 30 "TCP:127.0.0.1:$FWD_PORT" STDIO \
        <"$TD/in" >"$TD/out" 2>"$TD/cli.err"
    assertEquals "plain client exit status" 0 $?
    wait_bg fwd
    assertEquals "relay exit status" 0 $?
    wait_bg srv
    assertEquals "sealed server exit status" 0 $?
    cap_stop
    assertSameFile "echo through the relay" "$TD/in" "$TD/out"
    assertFileContains "relay summary" "$TD/fwd.err" \
        "forward 1: ok, 2000000 bytes to the sealed side, 2000000 bytes from it"
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-conns 1 --min-bytes 4000000
    assertEquals "sealed leg: preface, no plaintext" 0 $?
}

test_sealed_client_through_relay_to_plain_server() {
    local port m
    port=$(free_port)
    mkkey k >/dev/null || { fail "no key"; return 0; }
    m=$(newmarker)
    mkmarked "$TD/in" 1500000 "$m"
    bg srv plain socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$TD/out,creat,trunc"
    wait_listen "$port" srv || { fail "plain server did not listen"; return 0; }
    fwd_start --sealed-side listen --connect "127.0.0.1:$port" --key "$TD/k.key" ||
        { fail "relay did not listen"; return 0; }
    write_policy <<EOF
key k $TD/k.key
connect 127.0.0.1:$FWD_PORT key=k
EOF
    cap_start "$FWD_PORT" || { fail "tcpdump did not start"; return 0; }
    sealed socat -u "OPEN:$TD/in" "TCP:127.0.0.1:$FWD_PORT" 2>"$TD/cli.err"
    assertEquals "sealed client exit status" 0 $?
    wait_bg srv
    assertEquals "plain server exit status" 0 $?
    wait_bg fwd
    assertEquals "relay exit status" 0 $?
    cap_stop
    assertSameFile "upload through the relay" "$TD/in" "$TD/out"
    assertFileContains "relay summary" "$TD/fwd.err" \
        "forward 1: ok, 0 bytes to the sealed side, 1500000 bytes from it"
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-conns 1 --min-bytes 1500000
    assertEquals "sealed leg: preface, no plaintext" 0 $?
}

test_relay_with_wrong_key_gives_the_plain_client_nothing() {
    local port
    port=$(free_port)
    mkkey k >/dev/null && mkkey other >/dev/null || { fail "no key"; return 0; }
    write_policy <<EOF
key k $TD/k.key
accept 127.0.0.1:$port key=k
EOF
    echo "secret request" >"$TD/in"
    bg srv sealed socat -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" EXEC:cat
    wait_listen "$port" srv || { fail "sealed server did not listen"; return 0; }
    fwd_start --connect "127.0.0.1:$port" --key "$TD/other.key" ||
        { fail "relay did not listen"; return 0; }
    # (sockprog, not socat: socat takes a reset for an end of file)
    plain env -u LD_PRELOAD "$PY" "$PROGS/sockprog.py" client 127.0.0.1 "$FWD_PORT" \
        --send "$TD/in" --mode sequential >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "plain client: the read failed" 4 $?
    assertFileContains "plain client saw a reset and no byte" "$TD/cli.out" \
        "^recv: ERROR .*errno=ECONNRESET recv=0"
    wait_bg fwd
    assertNotEquals "relay reports the failure" 0 $?
    assertFileContains "relay error line" "$TD/fwd.err" "forward 1: ERROR (NETWORK|HANDSHAKE_AUTH)"
    wait_bg srv
    assertFileContains "sealed server logged the wrong key" "$TD/srv.err" \
        "handshake message 1 failed authentication"
}

test_truncation_on_the_sealed_leg_resets_the_plain_client() {
    mkkey k >/dev/null || { fail "no key"; return 0; }
    mkdata "$TD/in" 300000
    # a sealed server that sends data, then ends TCP without the mark
    peer_listen p --key "$TD/k.key" --send "$TD/in" --truncate --no-recv ||
        { fail "peer did not listen"; return 0; }
    fwd_start --connect "127.0.0.1:$PEER_PORT" --key "$TD/k.key" ||
        { fail "relay did not listen"; return 0; }
    : >"$TD/empty"
    plain env -u LD_PRELOAD "$PY" "$PROGS/sockprog.py" client 127.0.0.1 "$FWD_PORT" \
        --send "$TD/empty" --mode sequential --recv-out "$TD/out" >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "plain client: the read failed, no end of file" 4 $?
    assertFileContains "plain client saw a reset after the data" "$TD/cli.out" \
        "^recv: ERROR .*errno=ECONNRESET recv=300000"
    wait_bg fwd
    assertEquals "relay: truncation exit code" 6 $?
    assertFileContains "relay error line" "$TD/fwd.err" "forward 1: ERROR TRUNCATED"
    wait_bg p
}

. shunit2
