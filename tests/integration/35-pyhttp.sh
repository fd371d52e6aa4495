#!/bin/bash
# python3 -m http.server (ThreadingHTTPServer: a thread per connection,
# blocking sockets, SHUT_WR on close), sealed, serving a 1 MiB file to sealed
# curl (non-blocking connect, poll before every recv, MSG_NOSIGNAL) and
# sealed urllib (socket timeout mode: FIONBIO, poll), one at a time and
# several at once.  Bodies are checked by sha256, the server logged every
# request, and the capture shows the preface on every connection and neither
# the file nor its name (the request path) in plaintext.
. "$(dirname "$0")/lib.sh"

FETCH=$PROGS/pyhttp_fetch.py
CURL=${CURL:-/usr/bin/curl}
SIZE=$((1024 * 1024))

# serve: marked $TD/www/$M.bin, policy, sealed http.server on $PORT; sets
# M (the marker, also the file name) and URL.
serve() {
    PORT=$(free_port)
    loopback_policy "$PORT" || return 1
    M=$(newmarker)
    mkdir -p "$TD/www"
    mkmarked "$TD/www/$M.bin" "$SIZE" "$M"
    URL=http://127.0.0.1:$PORT/$M.bin
    cap_start "$PORT" || return 1
    bg srv sealed "$PY" -m http.server "$PORT" --bind 127.0.0.1 --directory "$TD/www"
    wait_listen "$PORT" srv
}

curl_usable() { san_can_run "$CURL" --version; }

# curl_bg NAME: a sealed curl fetching $URL into $TD/NAME.body in the background
curl_bg() {
    bg "$1" sealed "$CURL" -sS --fail --max-time 30 -o "$TD/$1.body" "$URL"
}

# finish N: stop the server and the capture; the server logged N good GETs,
# and the capture is sealed with at least N connections.
finish() {
    local n
    stop_bg srv
    cap_stop
    n=$(grep -cF "\"GET /$M.bin HTTP/1.1\" 200 " "$TD/srv.err")
    assertEquals "server logged $1 successful GETs" "$1" "$n"
    cap_check --preface "$PREFACE_HEX" --marker "$M" --min-conns "$1" --min-bytes $(($1 * SIZE))
    assertEquals "capture: preface on every connection, no plaintext" 0 $?
}

test_curl_one_then_four_in_parallel() {
    local k
    curl_usable || { startSkipping; return 0; }
    serve || { fail "server did not start"; return 0; }
    sealed "$CURL" -sS --fail --max-time 30 -o "$TD/one.body" "$URL" 2>"$TD/curl-one.err"
    assertEquals "curl exit status" 0 $?
    assertSameFile "curl: body" "$TD/www/$M.bin" "$TD/one.body"
    for k in 1 2 3 4; do curl_bg "curl$k"; done
    for k in 1 2 3 4; do
        wait_bg "curl$k"
        assertEquals "parallel curl $k: exit status" 0 $?
        assertSameFile "parallel curl $k: body" "$TD/www/$M.bin" "$TD/curl$k.body"
    done
    finish 5
}

test_urllib_one_then_four_threads() {
    local k
    serve || { fail "server did not start"; return 0; }
    sealed "$PY" "$FETCH" "$URL" "$TD/one" >"$TD/one.out" 2>"$TD/one.err"
    assertEquals "urllib exit status" 0 $?
    assertFileContains "urllib: 200 and the whole body" "$TD/one.out" \
        "^fetch 1: OK status=200 len=$SIZE sha256=$(sha "$TD/www/$M.bin")\$"
    assertSameFile "urllib: body" "$TD/www/$M.bin" "$TD/one.1"
    sealed "$PY" "$FETCH" "$URL" "$TD/four" --count 4 >"$TD/four.out" 2>"$TD/four.err"
    assertEquals "urllib, 4 threads: exit status" 0 $?
    for k in 1 2 3 4; do
        assertSameFile "urllib thread $k: body" "$TD/www/$M.bin" "$TD/four.$k"
    done
    finish 5
}

test_curl_and_urllib_at_once() {
    local k
    curl_usable || { startSkipping; return 0; }
    serve || { fail "server did not start"; return 0; }
    for k in 1 2 3 4; do curl_bg "curl$k"; done
    bg py sealed "$PY" "$FETCH" "$URL" "$TD/py" --count 4
    for k in 1 2 3 4; do
        wait_bg "curl$k"
        assertEquals "curl $k: exit status" 0 $?
        assertSameFile "curl $k: body" "$TD/www/$M.bin" "$TD/curl$k.body"
    done
    wait_bg py
    assertEquals "urllib, 4 threads: exit status" 0 $?
    for k in 1 2 3 4; do
        assertSameFile "urllib thread $k: body" "$TD/www/$M.bin" "$TD/py.$k"
    done
    finish 8
}

. shunit2
