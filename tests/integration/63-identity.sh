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
. "$LIB_DIR/redis_lib.sh"

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

# A reload that removes a peer from peers= refuses its new connections and
# ends its live one, idle meanwhile, at its next read: the server (one
# process, a thread per connection) gets ECONNRESET and resets it.  A peer
# still listed goes on, before and after.
test_revocation_ends_the_idle_connection() {
    local i refused=0
    setup || { fail "no identities"; return 0; }
    write_policy <<EOF
identity srv $TD/srv.id
identity cli $TD/cli.id
peer server $PUB_srv
peer client $PUB_cli
peer other $PUB_other
connect 127.0.0.1:$PORT identity=cli peer=server
accept 127.0.0.1:$PORT identity=srv peers=client,other
EOF
    sed "s#^identity cli .*#identity cli $TD/other.id#" "$POLICY" >"$TD/other.policy"
    cat >"$TD/srv.py" <<'PY'
import socketserver, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        try:
            while True:
                b = self.request.recv(65536)
                if not b:
                    return
                self.request.sendall(b)
        except OSError as e:
            print("server: %s" % type(e).__name__, flush=True)
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer.daemon_threads = True
socketserver.ThreadingTCPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
    cat >"$TD/idle.py" <<'PY'
import os, socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"one\n")
print("before:", c.recv(100).decode().strip(), flush=True)
for _ in range(600):
    if os.path.exists(sys.argv[2]):
        break
    time.sleep(0.05)
c.sendall(b"two\n")
try:
    b = c.recv(100)
    print("after:", b.decode().strip() if b else "EOF", flush=True)
except OSError as e:
    print("after: %s" % type(e).__name__, flush=True)
PY
    bg srv sealed env SOCKSEAL_LOG=info "$PY" "$TD/srv.py" "$PORT"
    wait_listen "$PORT" srv || { fail "server did not start"; return 0; }
    bg idle plain env LD_PRELOAD="$PRELOAD" SOCKSEAL_POLICY="$TD/other.policy" \
        "${SAN_ENV[@]}" "$PY" "$TD/idle.py" "$PORT" "$TD/go"
    wait_line "$TD/idle.out" "before: one" || { fail "idle client did not start"; return 0; }
    mkdata "$TD/in.bin" 4096
    client "$POLICY" "$TD/in.bin" "$TD/a.out"
    assertEquals "the listed client, before" 0 $?
    # other leaves peers= (written elsewhere, renamed into place)
    sed 's/peers=client,other/peers=client/' "$POLICY" >"$TD/policy.new"
    mv "$TD/policy.new" "$POLICY"
    # new connections from other are refused once the server reloaded
    for i in $(seq 60); do
        echo x >"$TD/x.in"
        if ! client "$TD/other.policy" "$TD/x.in" "$TD/x.out" || [ ! -s "$TD/x.out" ]; then
            refused=1
            break
        fi
        sleep 0.25
    done
    assertEquals "other's new connections refused after the reload" 1 "$refused"
    touch "$TD/go"
    wait_bg idle
    assertFileHasString "the idle connection ended at its next read" "$TD/idle.out" \
        "after: ConnectionResetError"
    assertFileHasString "the server's read: ECONNRESET" "$TD/srv.out" \
        "server: ConnectionResetError"
    assertFileHasString "the server's log: revoked" "$TD/srv.err" \
        "peer other revoked by a policy reload (not in peers= of rule $POLICY:7 any more)"
    client "$POLICY" "$TD/in.bin" "$TD/b.out"
    assertEquals "the listed client, after" 0 $?
    assertSameFile "its echo" "$TD/in.bin" "$TD/b.out"
    stop_bg srv
}

# A server identity rotated through reloads while a client connects all
# along: old; new,old (in force); the client's peer= moves to new; new
# alone (in force).  Every connection of the loop succeeds.
test_identity_rotation_through_reloads() {
    local n ok bad
    setup || { fail "no identities"; return 0; }
    ident srvnew || { fail "no identity"; return 0; }
    srv_policy() {
        cat >"$TD/srv.policy.new" <<EOF
identity srv $TD/srv.id
identity srvnew $TD/srvnew.id
peer client $PUB_cli
accept 127.0.0.1:$PORT identity=$1 peers=client
EOF
        mv "$TD/srv.policy.new" "$TD/srv.policy"
    }
    cli_policy() {
        cat >"$TD/cli.policy.new" <<EOF
identity cli $TD/cli.id
peer server $1
connect 127.0.0.1:$PORT identity=cli peer=server
EOF
        mv "$TD/cli.policy.new" "$TD/cli.policy"
    }
    srv_policy srv
    cli_policy "$PUB_srv"
    POLICY=$TD/srv.policy
    echo_server || { fail "server did not start"; return 0; }
    echo ping >"$TD/ping"
    (
        for ((n = 0; n < 600; n++)); do
            [ -e "$TD/stop" ] && break
            if client "$TD/cli.policy" "$TD/ping" "$TD/pong.$n" &&
                cmp -s "$TD/ping" "$TD/pong.$n"; then
                echo ok
            else
                echo "FAIL $n"
            fi
            rm -f "$TD/pong.$n"
            sleep 0.05
        done
    ) >"$TD/loop.out" 2>&1 &
    local loop=$!
    srv_policy srvnew,srv
    wait_line "$TD/srv.err" "policy reloaded" 20 || fail "the server did not reload (1)"
    cli_policy "$PUB_srvnew"
    sleep 0.5
    srv_policy srvnew
    for ((n = 0; n < 200; n++)); do
        [ "$(grep -c 'policy reloaded' "$TD/srv.err")" -ge 2 ] && break
        sleep 0.1
    done
    assertTrue "the server reloaded for both steps" \
        "[ $(grep -c 'policy reloaded' "$TD/srv.err") -ge 2 ]"
    sleep 0.5
    touch "$TD/stop"
    wait "$loop"
    # The last step is in force in the running server from its next
    # connection decision on: the old identity is gone.
    cli_policy "$PUB_srv"
    client "$TD/cli.policy" "$TD/ping" "$TD/pong.old" && cmp -s "$TD/ping" "$TD/pong.old"
    assertNotEquals "a client pinning the old server key is refused" 0 $?
    stop_bg srv
    ok=$(grep -c '^ok$' "$TD/loop.out")
    bad=$(grep -c FAIL "$TD/loop.out")
    echo "    connections during the rotation: $ok ok, $bad failed"
    assertEquals "no connection failed during the rotation" 0 "$bad"
    assertTrue "connections ran throughout ($ok)" "[ $ok -gt 5 ]"
}

# The independent peer (tests/peer/, no code shared with the shim) against
# the shim, both roles, both suites, with and without a PSK: a 256 KiB
# echo each way, compared.
peer_both_roles() {
    local suite=$1 k=$2 opt=() keyopt=()
    setup || { fail "no identities"; return 0; }
    if [ -n "$k" ]; then
        KEY=$(mkkey k) || { fail "no key"; return 0; }
        keyopt=(--key "$KEY")
    fi
    [ "$suite" = 4 ] && opt=(cipher=aesgcm)
    mkdata "$TD/in.bin" $((256 * 1024))
    # the shim accepts, the peer connects
    both_policy "${k:+key=k} ${opt[*]}" "${k:+key=k} ${opt[*]}"
    [ -n "$k" ] && sed -i "1i key k $KEY" "$POLICY"
    echo_server || { fail "server did not start"; return 0; }
    peer connect 127.0.0.1 "$PORT" --suite "$suite" --identity "$TD/cli.id" \
        --peer-key "$PUB_srv" "${keyopt[@]}" --send "$TD/in.bin" \
        --recv-out "$TD/p1.out" --stats "$TD/p1.json" 2>"$TD/p1.err"
    assertEquals "suite $suite${k:+ with a PSK}: the peer connects" 0 $?
    stop_bg srv
    assertSameFile "the shim's echo to the peer" "$TD/in.bin" "$TD/p1.out"
    assertFileHasString "the server named the peer" "$TD/srv.err" ", peer client (rule"
    # the peer accepts (admitting cli's key), the shim connects
    peer_listen pl --suite "$suite" --identity "$TD/srv.id" --peer-key "$PUB_cli" \
        "${keyopt[@]}" --echo --stats "$TD/p2.json" || { fail "peer did not listen"; return 0; }
    PORT=$PEER_PORT
    both_policy "${k:+key=k} ${opt[*]}" ""
    [ -n "$k" ] && sed -i "1i key k $KEY" "$POLICY"
    client "$POLICY" "$TD/in.bin" "$TD/p2.out"
    assertEquals "suite $suite${k:+ with a PSK}: the shim connects to the peer" 0 $?
    wait_bg pl
    assertEquals "the peer's exit status" 0 $?
    assertSameFile "the peer's echo to the shim" "$TD/in.bin" "$TD/p2.out"
    assertFileHasString "the peer saw cli's key" "$TD/p2.json" "\"peer_key\": \"$PUB_cli\""
}

test_peer_suite3_no_psk() { peer_both_roles 3 ""; }
test_peer_suite3_psk() { peer_both_roles 3 k; }
test_peer_suite4_no_psk() { peer_both_roles 4 ""; }
test_peer_suite4_psk() { peer_both_roles 4 k; }

# The peer proves the refusals from outside: an initiator key the shim's
# peers= lacks, and a shim client that reaches a responder with another key.
test_peer_refusals() {
    setup || { fail "no identities"; return 0; }
    both_policy "" ""
    echo_server || { fail "server did not start"; return 0; }
    echo hi >"$TD/hi"
    peer connect 127.0.0.1 "$PORT" --suite 3 --identity "$TD/other.id" \
        --peer-key "$PUB_srv" --send "$TD/hi" 2>"$TD/p1.err"
    assertNotEquals "an unlisted initiator key is refused" 0 $?
    stop_bg srv
    assertFileHasString "the server names its fingerprint" "$TD/srv.err" \
        "unknown client key $("$KEYTOOL" show --pub "$PUB_other")"
    peer_listen pl --suite 3 --identity "$TD/other.id" --peer-key "$PUB_cli" --echo ||
        { fail "peer did not listen"; return 0; }
    PORT=$PEER_PORT
    both_policy "" ""
    client "$POLICY" "$TD/hi" "$TD/out"
    assertNotEquals "a responder without the key peer= names: refused" 0 $?
    wait_bg pl
    assertNotEquals "the peer failed the handshake too" 0 $?
    assertFileHasString "the peer: message 1 not for its key" "$TD/pl.err" "HANDSHAKE_AUTH"
}

# redis (one epoll thread) with identities: redis-cli stores and reads back
# a 1 MiB binary value, redis-benchmark's 50 clients run SET and GET; the
# capture shows suite 3 on every connection and no marker.
test_redis_with_identities() {
    local n
    setup || { fail "no identities"; return 0; }
    both_policy "" ""
    M=$(newmarker)
    mkmarked "$TD/val" $((1024 * 1024)) "$M"
    cap_start "$PORT" || { fail "no capture"; return 0; }
    redis_start "$PORT" || { fail "redis-server did not start"; return 0; }
    rcli -x SET big <"$TD/val" >"$TD/set.out" 2>"$TD/set.err"
    assertEquals "SET reply" "OK" "$(cat "$TD/set.out")"
    rcli --raw GET big >"$TD/get.raw" 2>"$TD/get.err"
    head -c -1 "$TD/get.raw" >"$TD/got"
    assertSameFile "1 MiB value round trip" "$TD/val" "$TD/got"
    sealed redis-benchmark -h 127.0.0.1 -p "$PORT" -q -n 2000 -t set,get \
        >"$TD/bench.out" 2>"$TD/bench.err"
    assertEquals "redis-benchmark exit status" 0 $?
    tr '\r' '\n' <"$TD/bench.out" >"$TD/bench.lines"
    assertFileContains "SET measured" "$TD/bench.lines" "^SET: [0-9.]+ requests per second"
    assertFileContains "GET measured" "$TD/bench.lines" "^GET: [0-9.]+ requests per second"
    rcli INFO stats >"$TD/info.out" 2>/dev/null
    n=$(info_field "$TD/info.out" total_connections_received)
    assertTrue "redis counted the benchmark's connections ($n)" "[ \"$n\" -ge 50 ]"
    stop_bg srv
    cap_stop
    cap_check --preface "$PREFACE3" --marker "$M" --min-conns 50 --min-bytes $((2 * 1024 * 1024))
    assertEquals "capture: suite 3 preface on every connection, no plaintext" 0 $?
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
