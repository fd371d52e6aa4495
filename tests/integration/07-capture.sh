#!/bin/bash
# What is on the wire: every sealed connection starts with the preface and
# carries none of the plaintext markers; a negative control shows that the
# same check catches an unsealed transfer; a sealed client against a plain
# server (one that waits, one that greets first) fails, sends only its
# handshake, and its log names the likely cause.
. "$(dirname "$0")/lib.sh"

PROG=$PROGS/sockprog.py

setup_port() {
    PORT=$(free_port)
    loopback_policy "$PORT" || return 1
}

# transfer sealed|plain: socat upload and python download of marked data
transfer() {
    local how=$1
    bg srv "$how" socat -u "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr" "OPEN:$TD/up.got,creat,trunc"
    wait_listen "$PORT" srv || return 1
    "$how" socat -u "OPEN:$TD/up" "TCP:127.0.0.1:$PORT" 2>"$TD/cli.err"
    assertEquals "$how upload exit status" 0 $?
    wait_bg srv
    bg srv2 "$how" "$PY" "$PROG" server 127.0.0.1 "$PORT" --mode source --reply "$TD/down"
    wait_listen "$PORT" srv2 || return 1
    "$how" "$PY" "$PROG" client 127.0.0.1 "$PORT" --recv-out "$TD/down.got" >"$TD/cli2.out" 2>"$TD/cli2.err"
    assertEquals "$how download exit status" 0 $?
    wait_bg srv2
    assertSameFile "$how upload" "$TD/up" "$TD/up.got"
    assertSameFile "$how download" "$TD/down" "$TD/down.got"
}

test_sealed_transfer_shows_no_plaintext() {
    setup_port || { fail "no key"; return 0; }
    M1=$(newmarker)
    M2=$(newmarker)
    mkmarked "$TD/up" 1500000 "$M1"
    mkmarked "$TD/down" 1500000 "$M2"
    cap_start "$PORT" || { fail "no capture"; return 0; }
    transfer sealed || { fail "transfer setup failed"; return 0; }
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$M1" --marker "$M2" --min-conns 2 --min-bytes 3000000
    assertEquals "sealed: preface on every connection, no marker" 0 $?
}

test_negative_control_unsealed_transfer_is_caught() {
    setup_port || { fail "no key"; return 0; }
    M1=$(newmarker)
    M2=$(newmarker)
    mkmarked "$TD/up" 1500000 "$M1"
    mkmarked "$TD/down" 1500000 "$M2"
    cap_start "$PORT" || { fail "no capture"; return 0; }
    transfer plain || { fail "transfer setup failed"; return 0; }
    cap_stop
    cap_check --marker "$M1" --marker "$M2" --expect-marker --min-conns 2 --min-bytes 3000000
    assertEquals "unsealed: both markers visible" 0 $?
    cap_check --preface "$PREFACE_HEX" --marker "$M1" --marker "$M2" --min-conns 2
    assertNotEquals "unsealed: the sealed-check fails" 0 $?
}

test_half_sealed_is_refused_not_leaked() {
    # sealed client, plain server on a port the client's policy seals:
    # the client's handshake fails and nothing but the preface leaves it.
    setup_port || { fail "no key"; return 0; }
    sed -i "s/^connect .*/& timeout=2000/" "$POLICY"
    M1=$(newmarker)
    mkmarked "$TD/up" 200000 "$M1"
    bg srv plain socat -u "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr" "OPEN:$TD/up.got,creat,trunc"
    wait_listen "$PORT" srv || { fail "server did not listen"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    sealed "$PY" "$PROG" client 127.0.0.1 "$PORT" --send "$TD/up" >"$TD/cli.out" 2>"$TD/cli.err"
    assertNotEquals "sealed client against a plain server fails" 0 $?
    assertFileContains "the client's log says the server is not speaking sockseal" \
        "$TD/cli.err" "handshake timed out: no answer from the server; it is probably not speaking sockseal"
    wait_bg srv
    cap_stop
    assertTrue "the server ran and kept what it got" "[ -f $TD/up.got ]"
    assertFileNotContains "plain server got no plaintext" "$TD/up.got" "$M1"
    cap_check --preface "$PREFACE_HEX" --marker "$M1"
    assertEquals "only sealed bytes on the wire" 0 $?
}

test_plain_server_that_speaks_first() {
    # sealed client, plain server that greets first (as sshd, SMTP and FTP
    # servers do): the client fails on the greeting, saying why, without
    # waiting for its handshake timeout (60 s here, longer than the test
    # waits), and sends nothing but its handshake.
    setup_port || { fail "no key"; return 0; }
    sed -i "s/^connect .*/& timeout=60000/" "$POLICY"
    M1=$(newmarker)
    mkmarked "$TD/up" 200000 "$M1"
    printf '#!/bin/sh\nprintf "SSH-2.0-OpenSSH_9.2 greeting\\r\\n"\nexec cat > "%s"\n' \
        "$TD/up.got" >"$TD/greet.sh"
    chmod +x "$TD/greet.sh"
    bg srv plain socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr" "EXEC:$TD/greet.sh"
    wait_listen "$PORT" srv || { fail "server did not listen"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    TMO=30 sealed "$PY" "$PROG" client 127.0.0.1 "$PORT" --send "$TD/up" \
        >"$TD/cli.out" 2>"$TD/cli.err"
    local rc=$?
    assertNotEquals "sealed client against a greeting plain server fails" 0 $rc
    assertNotEquals "it fails on the greeting, not at a timeout" 124 $rc
    assertFileContains "the client's log says the answer is not a sockseal handshake" \
        "$TD/cli.err" "bad handshake message 2 length: the server's answer is not a sockseal handshake"
    wait_bg srv
    cap_stop
    assertTrue "the server ran and kept what it got" "[ -f $TD/up.got ]"
    assertFileNotContains "plain server got no plaintext" "$TD/up.got" "$M1"
    cap_check --preface "$PREFACE_HEX" --marker "$M1"
    assertEquals "only sealed bytes on the wire" 0 $?
}

. shunit2
