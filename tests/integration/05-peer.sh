#!/bin/bash
# Interoperability: the independent python peer (unshimmed) against sealed
# socat, in both roles, with enough records to cross the 65536 rekey.
. "$(dirname "$0")/lib.sh"

# policy_rules RULE...: key k (made once per test) plus the given rules.
policy_rules() {
    [ -f "$TD/k.key" ] || mkkey k >/dev/null || return 1
    { echo "key k $TD/k.key"; printf '%s\n' "$@"; } >"$POLICY"
}

stat_of() {   # stat_of JSONFILE FIELD
    "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["stats"].get(sys.argv[2], d.get(sys.argv[2])))' "$1" "$2" 2>/dev/null
}

test_peer_connects_to_sealed_socat_echo() {
    local port
    port=$(free_port)
    policy_rules "accept 127.0.0.1:$port key=k" || { fail "no key"; return 0; }
    mkdata "$TD/in" 1200000
    bg srv sealed socat -b 16 -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" EXEC:cat
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    # 16-byte records: 75000 to the shim; socat -b 16 writes 16 bytes at a time back
    peer connect 127.0.0.1 "$port" --key "$TD/k.key" --send "$TD/in" --chunk 16 \
        --recv-out "$TD/out" --stats "$TD/peer.json" 2>"$TD/peer.err"
    assertEquals "peer exit status" 0 $?
    wait_bg srv
    assertEquals "sealed socat exit status" 0 $?
    assertSameFile "echo via the sealed socat" "$TD/in" "$TD/out"
    assertEquals "peer sent 75000 records" 75000 "$(stat_of "$TD/peer.json" sent_records)"
    assertEquals "peer rekeyed its sending key" 1 "$(stat_of "$TD/peer.json" send_rekeys)"
    local n
    n=$(stat_of "$TD/peer.json" recv_records)
    assertTrue "the shim sent > 65536 records ($n)" "[ ${n:-0} -gt 65536 ]"
    assertEquals "end-of-stream received" True "$(stat_of "$TD/peer.json" eos_received)"
}

test_sealed_socat_connects_to_peer() {
    mkkey k >/dev/null || { fail "no key"; return 0; }
    mkdata "$TD/in" 1200000
    peer_listen p --key "$TD/k.key" --recv-out "$TD/out" --stats "$TD/peer.json" ||
        { fail "peer did not listen"; return 0; }
    policy_rules "connect 127.0.0.1:$PEER_PORT key=k"
    sealed socat -b 16 -u "OPEN:$TD/in" "TCP:127.0.0.1:$PEER_PORT" 2>"$TD/cli.err"
    assertEquals "sealed socat exit status" 0 $?
    wait_bg p
    assertEquals "peer exit status" 0 $?
    assertSameFile "file via the peer" "$TD/in" "$TD/out"
    local n
    n=$(stat_of "$TD/peer.json" recv_records)
    assertTrue "the shim sent > 65536 records ($n)" "[ ${n:-0} -gt 65536 ]"
    assertEquals "peer followed the shim's rekey" 1 "$(stat_of "$TD/peer.json" recv_rekeys)"
}

test_sealed_socat_client_with_echoing_peer() {
    mkkey k >/dev/null || { fail "no key"; return 0; }
    mkdata "$TD/in" 2500000
    peer_listen p --key "$TD/k.key" --echo --stats "$TD/peer.json" ||
        { fail "peer did not listen"; return 0; }
    policy_rules "connect 127.0.0.1:$PEER_PORT key=k"
    sealed socat -t 30 "TCP:127.0.0.1:$PEER_PORT" STDIO <"$TD/in" >"$TD/out" 2>"$TD/cli.err"
    assertEquals "sealed socat exit status" 0 $?
    wait_bg p
    assertEquals "peer exit status" 0 $?
    assertSameFile "echo by the peer" "$TD/in" "$TD/out"
}

test_peer_sends_max_size_records() {
    local port
    port=$(free_port)
    policy_rules "accept 127.0.0.1:$port key=k" || { fail "no key"; return 0; }
    mkdata "$TD/in" 3000000
    bg srv sealed socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$TD/out,creat,trunc"
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    peer connect 127.0.0.1 "$port" --key "$TD/k.key" --send "$TD/in" --chunk 65519 \
        --stats "$TD/peer.json" 2>"$TD/peer.err"
    assertEquals "peer exit status" 0 $?
    wait_bg srv
    assertEquals "sealed socat exit status" 0 $?
    assertSameFile "65519-byte records" "$TD/in" "$TD/out"
}

test_key_rotation_second_key_accepted() {
    local port
    port=$(free_port)
    mkkey old >/dev/null && mkkey new >/dev/null || { fail "no key"; return 0; }
    cat >"$POLICY" <<EOF
key new $TD/new.key
key old $TD/old.key
accept 127.0.0.1:$port key=new,old
EOF
    mkdata "$TD/in" 200000
    bg srv sealed socat -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" EXEC:cat
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    peer connect 127.0.0.1 "$port" --key "$TD/old.key" --send "$TD/in" --recv-out "$TD/out1" 2>"$TD/p1.err"
    assertEquals "client with the second key" 0 $?
    assertSameFile "echo with the second key" "$TD/in" "$TD/out1"
    peer connect 127.0.0.1 "$port" --key "$TD/new.key" --send "$TD/in" --recv-out "$TD/out2" 2>"$TD/p2.err"
    assertEquals "client with the first key" 0 $?
    assertSameFile "echo with the first key" "$TD/in" "$TD/out2"
}

test_aesgcm_suite_with_peer() {
    grep -qw aes /proc/cpuinfo || { startSkipping; return 0; }
    "$PY" -c 'from cryptography.hazmat.primitives.ciphers.aead import AESGCM' 2>/dev/null ||
        { startSkipping; return 0; }
    local port
    port=$(free_port)
    policy_rules "accept 127.0.0.1:$port key=k cipher=aesgcm" || { fail "no key"; return 0; }
    mkdata "$TD/in" 1000000
    bg srv sealed socat -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" EXEC:cat
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    peer connect 127.0.0.1 "$port" --key "$TD/k.key" --suite 2 --send "$TD/in" \
        --chunk 1000 --recv-out "$TD/out" 2>"$TD/peer.err"
    assertEquals "peer (suite 2) exit status" 0 $?
    wait_bg srv
    assertSameFile "AES-GCM echo" "$TD/in" "$TD/out"
    # the sealed client proposing aesgcm to the peer
    mkdata "$TD/in2" 500000
    peer_listen p --key "$TD/k.key" --suite 2 --recv-out "$TD/out2" --stats "$TD/p.json" ||
        { fail "peer did not listen"; return 0; }
    policy_rules "connect 127.0.0.1:$PEER_PORT key=k cipher=aesgcm"
    cap_start "$PEER_PORT"
    sealed socat -u "OPEN:$TD/in2" "TCP:127.0.0.1:$PEER_PORT" 2>"$TD/cli.err"
    assertEquals "sealed aesgcm client exit status" 0 $?
    wait_bg p
    assertEquals "peer exit status" 0 $?
    cap_stop
    assertSameFile "AES-GCM upload" "$TD/in2" "$TD/out2"
    assertEquals "suite 2 negotiated" 2 "$(stat_of "$TD/p.json" suite)"
    cap_check --preface 534b534c01020000 --min-bytes 500000
    assertEquals "the preface proposes suite 2" 0 $?
}

test_chachapoly_only_server_refuses_aesgcm() {
    local port
    port=$(free_port)
    policy_rules "accept 127.0.0.1:$port key=k cipher=chachapoly" || { fail "no key"; return 0; }
    "$PY" -c 'from cryptography.hazmat.primitives.ciphers.aead import AESGCM' 2>/dev/null ||
        { startSkipping; return 0; }
    echo data >"$TD/in"
    bg srv sealed "$PY" "$PROGS/sockprog.py" server 127.0.0.1 "$port" --out "$TD/got"
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    peer connect 127.0.0.1 "$port" --key "$TD/k.key" --suite 2 --send "$TD/in" --timeout 10 2>"$TD/peer.err"
    assertNotEquals "suite 2 refused by a chachapoly-only rule" 0 $?
    wait_bg srv
    assertFileContains "server saw the failure" "$TD/srv.out" "^conn 1: ERROR .*errno=ECONNRESET recv=0"
}


test_peer_ends_its_direction_first() {
    # the peer sends its end-of-stream at once; socat -u never reads it, and
    # exits right after writing: every byte must still arrive (no reset)
    mkkey k >/dev/null || { fail "no key"; return 0; }
    mkdata "$TD/in" 4000000
    peer_listen p --key "$TD/k.key" --early-eos --recv-out "$TD/out" --stats "$TD/peer.json" ||
        { fail "peer did not listen"; return 0; }
    policy_rules "connect 127.0.0.1:$PEER_PORT key=k"
    sealed socat -u "OPEN:$TD/in" "TCP:127.0.0.1:$PEER_PORT" 2>"$TD/cli.err"
    assertEquals "sealed socat exit status" 0 $?
    wait_bg p
    assertEquals "peer exit status" 0 $?
    assertSameFile "upload after the peer's early end-of-stream" "$TD/in" "$TD/out"
}

. shunit2
