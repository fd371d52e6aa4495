#!/bin/bash
# Public-key identities (issue 15; DESIGN.md "Identities"): Noise IKpsk2,
# suites 3 and 4.  socat at both ends, sealed, each host with its own
# identity (sockseal-keytool identity), the server admitting the clients
# its peers= lists and the client requiring the server's key (peer=).
# Every echo compared; the capture shows the suite's preface and no
# marker.  Refused: an initiator not in peers= (the server's log names its
# key by the fingerprint `keytool show --pub` prints), a server that does
# not hold the key peer= names, and a client with the valid PSK but an
# unlisted key.  A migration rule serves PSK-only and identity clients;
# identity=new,old serves clients of either.  Keys made by WireGuard's wg
# work as they are.
. "$(dirname "$0")/lib.sh"

SIZE=$((1024 * 1024))
PREFACE3=534b534c01030000
PREFACE4=534b534c01040000

# ident NAME: a new identity $TD/NAME.id; its public key in PUB_NAME.
ident() {
    local pub
    pub=$("$KEYTOOL" identity "$TD/$1.id") || return 1
    printf -v "PUB_$1" '%s' "$pub"
}

# echo_server [ENV...]: sealed socat echo on PORT, info log in srv.err.
echo_server() {
    bg srv sealed env SOCKSEAL_LOG=info "$@" socat \
        "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" EXEC:cat
    wait_listen "$PORT" srv
}

# client POLICY IN OUT: a sealed socat client under POLICY (info log in
# $TD/cli.err); its exit status.
client() {
    timeout -k 5 "$TMO" env LD_PRELOAD="$PRELOAD" SOCKSEAL_POLICY="$1" \
        SOCKSEAL_LOG=info "${SAN_ENV[@]}" socat -t5 - "TCP:127.0.0.1:$PORT" \
        <"$2" >"$3" 2>"$TD/cli.err"
}

setup() {
    PORT=$(free_port)
    ident srv && ident cli && ident other || return 1
}

# The server's policy and the client's, in one file as the hosts' would be.
both_policy() {
    write_policy <<EOF
identity srv $TD/srv.id
identity cli $TD/cli.id
peer server $PUB_srv
peer client $PUB_cli
connect 127.0.0.1:$PORT identity=cli peer=server $1
accept 127.0.0.1:$PORT identity=srv peers=client $2
EOF
}

# echo_check PREFACE: 1 MiB through the echo, compared; the capture.
echo_check() {
    M=$(newmarker)
    mkmarked "$TD/in.bin" "$SIZE" "$M"
    cap_start "$PORT" || { fail "no capture"; return 0; }
    echo_server || { fail "server did not start"; return 0; }
    client "$POLICY" "$TD/in.bin" "$TD/out.bin"
    assertEquals "client exit status" 0 $?
    assertSameFile "the echo" "$TD/in.bin" "$TD/out.bin"
    stop_bg srv
    cap_stop
    cap_check --preface "$1" --marker "$M" --min-conns 1 --min-bytes $((2 * SIZE))
    assertEquals "capture: preface $1, no plaintext" 0 $?
    assertFileHasString "server log: the client by name" "$TD/srv.err" \
        "sealed connection from 127.0.0.1:"
    assertFileHasString "server log: peer client" "$TD/srv.err" ", peer client (rule"
    assertFileHasString "client log: peer server" "$TD/cli.err" ", peer server (rule"
}

test_suite3_without_psk() {
    setup || { fail "no identities"; return 0; }
    both_policy "" ""
    echo_check "$PREFACE3"
    assertFileHasString "suite named in the end line" "$TD/srv.err" "chachapoly+identity"
}

test_suite4_with_psk() {
    setup || { fail "no identities"; return 0; }
    KEY=$(mkkey k) || { fail "no key"; return 0; }
    both_policy "key=k cipher=aesgcm" "key=k"
    sed -i "1i key k $KEY" "$POLICY"
    echo_check "$PREFACE4"
    assertFileHasString "suite named in the end line" "$TD/srv.err" "aesgcm+identity"
}

# A refused handshake: the client fails, nothing reaches the echo.
refused() {
    echo_server || { fail "server did not start"; return 0; }
    echo hello >"$TD/in.txt"
    client "$1" "$TD/in.txt" "$TD/out.txt"
    assertNotEquals "client: refused" 0 $?
    assertEquals "client: nothing came back" 0 "$(fsize "$TD/out.txt")"
    stop_bg srv
}

# An initiator whose key the server's peers= does not list.
test_initiator_not_in_peers_refused_by_fingerprint() {
    local fpr
    setup || { fail "no identities"; return 0; }
    both_policy "" ""
    sed "s#^identity cli .*#identity cli $TD/other.id#" "$POLICY" >"$TD/other.policy"
    refused "$TD/other.policy"
    fpr=$("$KEYTOOL" show --pub "$PUB_other")
    assertFileHasString "server log: the unknown key by fingerprint" "$TD/srv.err" \
        "unknown client key $fpr (not in peers=)"
    assertFileHasString "server log: refused" "$TD/srv.err" ", refused ("
}

# The client's peer= names a key the server does not hold.
test_server_with_another_key_refused() {
    setup || { fail "no identities"; return 0; }
    both_policy "" ""
    sed "s#^peer server .*#peer server $PUB_other#" "$POLICY" >"$TD/wrong.policy"
    refused "$TD/wrong.policy"
    assertFileHasString "server log: message 1 not for its identity" "$TD/srv.err" \
        "the client expects another server key"
}

# The PSK is right, the static key in message 1 is not one peers= lists.
test_valid_psk_other_static_key_refused() {
    setup || { fail "no identities"; return 0; }
    KEY=$(mkkey k) || { fail "no key"; return 0; }
    both_policy "key=k" "key=k"
    sed -i "1i key k $KEY" "$POLICY"
    sed "s#^identity cli .*#identity cli $TD/other.id#" "$POLICY" >"$TD/other.policy"
    refused "$TD/other.policy"
    assertFileHasString "server log: the unknown key" "$TD/srv.err" "unknown client key SHA256:"
}

# One accept rule for PSK-only clients (suite 1) and identity clients.
test_migration_rule_serves_both() {
    setup || { fail "no identities"; return 0; }
    KEY=$(mkkey k) || { fail "no key"; return 0; }
    # the identity client has the PSK as its second factor
    both_policy "key=k" "key=k"
    sed -i "1i key k $KEY" "$POLICY"
    sed "s#^connect .*#connect 127.0.0.1:$PORT key=k#" "$POLICY" >"$TD/psk.policy"
    mkdata "$TD/in.bin" 65536
    echo_server || { fail "server did not start"; return 0; }
    client "$POLICY" "$TD/in.bin" "$TD/id.out"
    assertEquals "identity client" 0 $?
    client "$TD/psk.policy" "$TD/in.bin" "$TD/psk.out"
    assertEquals "PSK-only client" 0 $?
    stop_bg srv
    assertSameFile "identity client's echo" "$TD/in.bin" "$TD/id.out"
    assertSameFile "PSK-only client's echo" "$TD/in.bin" "$TD/psk.out"
    assertFileHasString "a suite 1 connection" "$TD/srv.err" "(rule $POLICY:7, chachapoly)"
    assertFileHasString "a suite 3 connection" "$TD/srv.err" "chachapoly+identity"
}

# identity=new,old: clients that know either key of the server.
test_server_identity_rotation() {
    setup || { fail "no identities"; return 0; }
    ident srvnew || { fail "no identity"; return 0; }
    write_policy <<EOF
identity srv $TD/srv.id
identity srvnew $TD/srvnew.id
identity cli $TD/cli.id
peer server $PUB_srv
peer client $PUB_cli
connect 127.0.0.1:$PORT identity=cli peer=server
accept 127.0.0.1:$PORT identity=srvnew,srv peers=client
EOF
    sed "s#^peer server .*#peer server $PUB_srvnew#" "$POLICY" >"$TD/new.policy"
    mkdata "$TD/in.bin" 65536
    echo_server || { fail "server did not start"; return 0; }
    client "$POLICY" "$TD/in.bin" "$TD/old.out"
    assertEquals "a client that knows the old key" 0 $?
    client "$TD/new.policy" "$TD/in.bin" "$TD/new.out"
    assertEquals "a client that knows the new key" 0 $?
    stop_bg srv
    assertSameFile "old-key client's echo" "$TD/in.bin" "$TD/old.out"
    assertSameFile "new-key client's echo" "$TD/in.bin" "$TD/new.out"
}

# WireGuard's keys as they are: wg genkey's file is an identity, wg
# pubkey's output a peer key; keytool pub agrees with wg pubkey.
test_wireguard_keys_work_as_they_are() {
    if ! command -v wg >/dev/null; then
        fail "wg missing (make install-deps: wireguard-tools)"
        return 0
    fi
    PORT=$(free_port)
    (umask 077; wg genkey >"$TD/wsrv.id"; wg genkey >"$TD/wcli.id")
    assertEquals "keytool pub = wg pubkey" "$(wg pubkey <"$TD/wsrv.id")" \
        "$("$KEYTOOL" pub "$TD/wsrv.id")"
    PUB_srv=$(wg pubkey <"$TD/wsrv.id")
    PUB_cli=$(wg pubkey <"$TD/wcli.id")
    cp "$TD/wsrv.id" "$TD/srv.id"
    cp "$TD/wcli.id" "$TD/cli.id"
    both_policy "" ""
    echo_check "$PREFACE3"
}

# The key tool: identity never overwrites, is private, pub is stable.
test_keytool_identity_and_pub() {
    local pub
    pub=$("$KEYTOOL" identity "$TD/a.id")
    assertEquals "identity: exit status" 0 $?
    assertEquals "identity: mode 0600" 600 "$(stat -c %a "$TD/a.id")"
    assertEquals "pub: the public key identity printed" "$pub" "$("$KEYTOOL" pub "$TD/a.id")"
    "$KEYTOOL" identity "$TD/a.id" 2>"$TD/err"
    assertEquals "identity: never overwrites" 1 $?
    assertFileHasString "identity: says so" "$TD/err" "refusing to overwrite"
    assertEquals "show --identity: public key and fingerprint" \
        "public key $pub"$'\n'"fingerprint $("$KEYTOOL" show --pub "$pub")" \
        "$("$KEYTOOL" show --identity "$TD/a.id")"
    "$KEYTOOL" pub "$TD/a.id" >"$TD/a.pub"
    assertEquals "show --pub: a file or the key itself" \
        "$("$KEYTOOL" show --pub "$pub")" "$("$KEYTOOL" show --pub "$TD/a.pub")"
    assertNotEquals "a public key's fingerprint is not a PSK's" \
        "$("$KEYTOOL" show "$TD/a.pub")" "$("$KEYTOOL" show --pub "$TD/a.pub")"
}

. shunit2
