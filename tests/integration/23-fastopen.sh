#!/bin/bash
# 23-fastopen: TCP Fast Open would put the first write in the SYN, before
# any handshake.  On a sealed connection the shim keeps it off (curl
# --tcp-fastopen sets TCP_FASTOPEN_CONNECT); the transfer works and the
# wire carries the preface first and no plaintext.  On an unsealed
# connection the option still works as the program asked.
. "$(dirname "$0")/lib.sh"

scenario_setup() {
    mkdir -p "$SUITE_TMP/www"
    M=$(newmarker)
    { echo "$M"; head -c 300000 /dev/urandom | base64; } >"$SUITE_TMP/www/page.txt"
}

start_http() {   # PORT: python http.server (sealed) serving $SUITE_TMP/www
    bg http sealed "$PY" -m http.server "$1" --bind 127.0.0.1 --directory "$SUITE_TMP/www"
    wait_listen "$1" http || fail "http.server did not listen"
}

test_fastopen_client_sealed() {
    local port
    san_can_run curl --version || { startSkipping; return 0; }
    port=$(free_port)
    loopback_policy "$port"
    cap_start "$port" || fail "tcpdump"
    start_http "$port"
    sealed curl -s --tcp-fastopen -o "$TD/got" "http://127.0.0.1:$port/page.txt" 2>"$TD/curl.err"
    assertEquals "curl --tcp-fastopen exit status" 0 $?
    assertSameFile "page" "$SUITE_TMP/www/page.txt" "$TD/got"
    stop_bg http
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$M" --min-conns 1 --min-bytes 300000
    assertEquals "capture: preface first, no plaintext" 0 $?
}

test_fastopen_client_unsealed_still_works() {
    local port sport
    san_can_run curl --version || { startSkipping; return 0; }
    port=$(free_port)
    sport=$(free_port)
    mkkey k >/dev/null
    # The policy seals another port only: this connection is untouched.
    write_policy <<EOF2
key k $TD/k.key
connect 127.0.0.1:$sport key=k
EOF2
    bg http plain "$PY" -m http.server "$port" --bind 127.0.0.1 --directory "$SUITE_TMP/www"
    wait_listen "$port" http || fail "http.server did not listen"
    sealed curl -s --tcp-fastopen -o "$TD/got" "http://127.0.0.1:$port/page.txt" 2>"$TD/curl.err"
    assertEquals "curl --tcp-fastopen exit status" 0 $?
    assertSameFile "page" "$SUITE_TMP/www/page.txt" "$TD/got"
    stop_bg http
}

. shunit2
