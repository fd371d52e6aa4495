#!/bin/bash
# 21-stdio: stdio on a sealed socket.  glibc's stdio bypasses every
# interposer, so fdopen() on a sealed fd must hand back a stream that goes
# through the shim: the bytes arrive, sealed, and fclose() ends the stream
# with the end-of-stream mark.
. "$(dirname "$0")/lib.sh"

test_fdopen_stream_is_sealed() {
    local port m
    port=$(free_port)
    loopback_policy "$port"
    m=$(newmarker)
    for i in $(seq 1 2000); do echo "$m line $i"; done >"$TD/lines.txt"
    tr a-z A-Z <"$TD/lines.txt" >"$TD/expect.txt"
    cap_start "$port" || fail "tcpdump"
    bg srv sealed socat TCP-LISTEN:"$port",bind=127.0.0.1,reuseaddr SYSTEM:'tr a-z A-Z'
    wait_listen "$port" srv || fail "server did not listen"
    sealed "$B/tests/fdopen_client" 127.0.0.1 "$port" <"$TD/lines.txt" \
        >"$TD/got.txt" 2>"$TD/cli.err"
    assertEquals "fdopen_client exit status" 0 $?
    wait_bg srv
    assertEquals "server exit status" 0 $?
    assertSameFile "upper-cased lines" "$TD/expect.txt" "$TD/got.txt"
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-conns 1 --min-bytes 60000
    assertEquals "capture: preface and no plaintext" 0 $?
}

. shunit2
