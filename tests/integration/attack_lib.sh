# shellcheck shell=bash
# Helpers for the attack scenarios 06-attacks.sh and 37-hostile.sh (sourced
# after lib.sh): a sealed sockprog server and the hostile peer as its
# client, or the hostile peer as a server and a sealed sockprog client.

PROG=$PROGS/sockprog.py

# Policy lines: 1 key k, 2 key other, 3 accept rule, 4 connect rule
attack_policy() {   # attack_policy PORT
    mkkey k >/dev/null && mkkey other >/dev/null || return 1
    write_policy <<EOF
key k $TD/k.key
key other $TD/other.key
accept 127.0.0.1:$1 key=k timeout=5000
connect 127.0.0.1:$1 key=k timeout=5000
EOF
    ACCEPT_LINE="$(basename "$POLICY"):3"
    CONNECT_LINE="$(basename "$POLICY"):4"
}

# sealed_server COUNT [OPTS...]: sealed sockprog server (default: sink) on
# $PORT for COUNT connections
sealed_server() {
    local n=$1
    shift
    PORT=${PORT:-$(free_port)}
    bg srv sealed "$PY" "$PROG" server 127.0.0.1 "$PORT" --count "$n" --out "$TD/got" "$@"
    wait_listen "$PORT" srv
}

# hostile_client OPTS...: the peer connects to the sealed server with OPTS,
# sending $TD/in in 1000-byte records; PEER_LOCAL is its local address.
hostile_client() {
    peer connect 127.0.0.1 "$PORT" --key "$TD/k.key" --send "$TD/in" --chunk 1000 \
        --timeout 10 "$@" >"$TD/hostile.out" 2>"$TD/hostile.err"
    HOSTILE_RC=$?
    PEER_LOCAL=$(sed -n 's/^sockseal_peer: connected local //p' "$TD/hostile.err")
}

# good_client K: a good peer client as connection K; checks delivery.
good_client() {
    mkdata "$TD/good$1" 300000
    peer connect 127.0.0.1 "$PORT" --key "$TD/k.key" --send "$TD/good$1" --timeout 10 \
        >"$TD/good$1.out" 2>"$TD/good$1.err"
    assertEquals "good client after the attack: exit status" 0 $?
}

# finish_server N: waits for the server; checks that connection N was good.
finish_server() {
    wait_bg srv
    assertEquals "server exit status" 0 $?
    assertFileContains "server still served a good client" "$TD/srv.out" \
        "^conn $1: OK recv=300000 sha256=$(sha "$TD/good$1") "
}

# assert_conn_reset K BYTES: connection K saw ECONNRESET after BYTES bytes,
# and those bytes are exactly the start of what the peer sent.
assert_conn_reset() {
    assertFileContains "conn $1: the program's recv failed with ECONNRESET after $2 bytes" \
        "$TD/srv.out" "^conn $1: ERROR ConnectionResetError errno=ECONNRESET recv=$2\$"
    if [ -f "$TD/got.$1" ]; then
        assertEquals "conn $1: delivered bytes" "$2" "$(fsize "$TD/got.$1")"
        cmp -s -n "$2" "$TD/in" "$TD/got.$1"
        assertEquals "conn $1: delivered bytes are a prefix of the sent data" 0 $?
    fi
}

# assert_logged WHY: the server's log names the peer and the accept rule
assert_server_log() {
    local port=${PEER_LOCAL##*:}
    assertFileContains "server log names the policy FILE:LINE" "$TD/srv.err" "$ACCEPT_LINE"
    [ -n "$port" ] && assertFileContains "server log names the peer 127.0.0.1 port $port" \
        "$TD/srv.err" "127\\.0\\.0\\.1.*\\b$port\\b"
}

# client-side attacks: the peer listens, a sealed python client connects
client_vs_hostile_peer() {   # OPTS... for the listening peer
    mkkey k >/dev/null && mkkey other >/dev/null || return 1
    peer_listen p --key "$TD/k.key" --send "$TD/in" --chunk 1000 --timeout 10 "$@" || return 1
    write_policy <<EOF
key k $TD/k.key
connect 127.0.0.1:$PEER_PORT key=k timeout=5000
EOF
    echo "client data" >"$TD/up"
    sealed "$PY" "$PROG" client 127.0.0.1 "$PEER_PORT" --send "$TD/up" --recv-out "$TD/down" \
        >"$TD/cli.out" 2>"$TD/cli.err"
    CLI_RC=$?
    wait_bg p
    PEER_RC=$?
    return 0
}

# assert_client_reset BYTES [LABEL]: the sealed client's recv failed with
# ECONNRESET after exactly BYTES bytes, and those are the start of $TD/in.
assert_client_reset() {
    local l=${2:+$2: }
    assertEquals "${l}client exit status (recv failed)" 4 "$CLI_RC"
    assertFileContains "${l}recv failed with ECONNRESET after $1 bytes" "$TD/cli.out" \
        "^recv: ERROR ConnectionResetError errno=ECONNRESET recv=$1\$"
    cmp -s "$TD/down" <(head -c "$1" "$TD/in")
    assertEquals "${l}the $1 bytes delivered are the genuine ones" 0 $?
}
