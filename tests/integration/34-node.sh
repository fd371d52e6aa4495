#!/bin/bash
# node (libuv: epoll_pwait, non-blocking connect, writev, SHUT_WR, sockets
# closed with syscall(SYS_close)), both ends sealed: an http server serving a
# 1 MiB body and echoing POST bodies, and a keep-alive client
# (http.Agent keepAlive, maxSockets 3) doing 6 parallel GETs, then 2 parallel
# 1 MiB POSTs on the same connections.  Bodies are checked by sha256; both
# programs exit cleanly; the capture shows the preface on every connection
# and none of the plaintext (request path, bodies).
#
# How each connection ends is reported (sock S: end / error / close lines in
# srv.out) but not asserted here: libuv closes with syscall(SYS_close).
. "$(dirname "$0")/lib.sh"

PROG=$PROGS/node_http.js
NODE=${NODE:-$(command -v node || echo /usr/bin/node)}
SIZE=$((1024 * 1024))

policy_for() {   # policy_for PORT
    loopback_policy "$1" || return 1
}

# run_node SERVER_OPTS...: sealed server and client on a fresh port, marked
# data; asserts that every body arrived whole, both programs exited 0, and
# the capture is sealed.
run_node() {
    local m1 m2 m3 path k n
    [ -x "$NODE" ] || { fail "node is not installed ($NODE)"; return 0; }
    PORT=$(free_port)
    policy_for "$PORT" || { fail "no key"; return 0; }
    m1=$(newmarker)
    m2=$(newmarker)
    m3=$(newmarker)
    path=/get/$m3
    mkmarked "$TD/body" "$SIZE" "$m1"
    mkmarked "$TD/post.1" "$SIZE" "$m2"
    mkmarked "$TD/post.2" $((SIZE + 12345)) "$m2"
    cap_start "$PORT" || { fail "no capture"; return 0; }
    bg srv sealed "$NODE" "$PROG" server 127.0.0.1 "$PORT" --body "$TD/body" --requests 8 "$@"
    wait_listen "$PORT" srv || { fail "server did not listen"; return 0; }
    sealed "$NODE" "$PROG" client 127.0.0.1 "$PORT" --path "$path" --gets 6 \
        --post "$TD/post.1" --post "$TD/post.2" --out "$TD/got" >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "client exit status" 0 $?
    wait_bg srv
    assertEquals "server exit status (all connections closed)" 0 $?
    cap_stop

    for ((k = 1; k <= 6; k++)); do
        assertFileContains "get $k: 200 and the whole body" "$TD/cli.out" \
            "^get $k: OK status=200 len=$SIZE sha256=$(sha "$TD/body") "
        assertSameFile "get $k: body" "$TD/body" "$TD/got.get.$k"
    done
    for k in 1 2; do
        assertFileContains "post $k: echoed" "$TD/cli.out" \
            "^post $k: OK status=200 len=$(fsize "$TD/post.$k") sha256=$(sha "$TD/post.$k") "
        assertSameFile "post $k: echo" "$TD/post.$k" "$TD/got.post.$k"
        assertFileContains "server got post $k whole" "$TD/srv.out" \
            "POST $path recv=$(fsize "$TD/post.$k") sha256=$(sha "$TD/post.$k")\$"
    done
    n=$(grep -c "GET $path sent=$SIZE\$" "$TD/srv.out")
    assertEquals "server answered 6 GETs" 6 "$n"
    # keep-alive: 3 connections (maxSockets), reused by the later requests
    assertFileContains "client used 3 connections" "$TD/cli.out" "^client: sockets=3\$"
    assertFileContains "server served 8 requests on 3 connections" "$TD/srv.out" \
        "^server: done requests=8 sockets=3\$"
    assertFileNotContains "no request failed" "$TD/cli.out" "ERROR"

    echo "    connection ends seen by the server: $(grep -E '^sock [0-9]+: (end|error|clientError)' "$TD/srv.out" | tr '\n' ';')"
    cap_check --preface "$PREFACE_HEX" --marker "$m1" --marker "$m2" --marker "$m3" \
        --min-conns 3 --min-bytes $((8 * SIZE))
    assertEquals "capture: preface on every connection, no plaintext" 0 $?
}

# The client closes its keep-alive connections (agent.destroy()) when it has
# every response; the server exits once they are gone.
test_keepalive_gets_and_posts_client_closes() {
    run_node
}

# The server closes its idle keep-alive connections itself (server.close())
# as soon as the last response is written: on TCP the client still gets every
# byte of that response.
test_keepalive_gets_and_posts_server_closes_idle() {
    run_node --close-idle yes
}

. shunit2
