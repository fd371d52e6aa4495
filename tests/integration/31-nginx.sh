#!/bin/bash
# nginx (master + 2 workers forked before accept, workers setuid and with a
# wiped environment; edge-triggered epoll with EPOLLRDHUP, EPOLLEXCLUSIVE on
# the shared listener; writev headers + sendfile64 body under TCP_CORK) and
# curl (non-blocking connect, poll before every recv), both sealed.
. "$(dirname "$0")/lib.sh"

BIG=$((1024 * 1024))
SMALL_SIZES="0 1 100 4096 70000"

# nginx_setup: policy, document root, config; sets PORT and URL.
nginx_setup() {
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
    loopback_policy "$PORT" || return 1
    mkdir -p "$TD/www/up" "$TD/tmp"
    mkdata "$TD/www/big.bin" "$BIG"
    local n
    for n in $SMALL_SIZES; do mkdata "$TD/www/s$n.bin" "$n"; done
    MARK=$(newmarker)
    mkmarked "$TD/www/marked.txt" 200000 "$MARK"
    # The master runs as root here and the workers switch to an unprivileged
    # user: that is the case the shim must survive (setuid, environ wiped;
    # the policy and the 0600 key were read in the constructor, before).
    # The workers then need to read the document root, so it is opened up
    # (the key stays 0600). If nobody cannot reach $TD (e.g. a TMPDIR under
    # a private home), the workers run as root instead.
    NGINX_USER="nobody nogroup"
    if [ "$(id -u)" = 0 ]; then
        chmod 711 "$SUITE_TMP" "$TD"
        chmod 755 "$TD/www"
        chmod 644 "$TD"/www/*.*
        chown nobody:nogroup "$TD/www/up"
        if ! setpriv --reuid=nobody --regid=nogroup --clear-groups \
            test -r "$TD/www/big.bin" 2>/dev/null; then
            NGINX_USER=root
        fi
    fi
    cat >"$TD/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 2;
user $NGINX_USER;
pid $TD/nginx.pid;
error_log $TD/nginx.err info;
events {
    worker_connections 256;
}
http {
    log_format conn '\$connection \$connection_requests \$status \$body_bytes_sent "\$request"';
    access_log $TD/access.out conn;
    client_body_temp_path $TD/tmp/body;
    proxy_temp_path $TD/tmp/proxy;
    fastcgi_temp_path $TD/tmp/fastcgi;
    uwsgi_temp_path $TD/tmp/uwsgi;
    scgi_temp_path $TD/tmp/scgi;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 30s;
    keepalive_requests 100;
    types {
        text/plain txt;
        application/octet-stream bin;
    }
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$PORT;
        root $TD/www;
        location / { }
        location /up/ {
            dav_methods PUT;
            client_max_body_size 8m;
        }
    }
}
EOF
}

# nginx_start: the sealed master as background "srv" (-e: no default log).
# Returns 2 (and skips the test's asserts) when curl cannot run here.
nginx_start() {
    if ! curl_usable; then
        echo "    SKIPPED: curl does not run under the sanitizer runtime $SAN_RT"
        startSkipping
        return 2
    fi
    nginx_setup || return 1
    bg srv sealed nginx -p "$TD" -c "$TD/nginx.conf" -e "$TD/nginx.err"
    wait_listen "$PORT" srv
}

# nginx_stop: TERM to the master (through its timeout wrapper); it stops its
# workers and removes its pid file on a clean exit.
nginx_stop() {
    assertTrue "nginx master still running" "running srv"
    stop_bg srv TERM
    assertFalse "nginx removed its pid file (clean exit)" "[ -e '$TD/nginx.pid' ]"
}

# ccurl ARGS...: a sealed curl that fails on HTTP errors.
ccurl() { sealed curl -sS --fail "$@"; }

test_1MiB_sha256() {
    nginx_start || { [ $? = 2 ] || fail "nginx did not start"; return 0; }
    ccurl -o "$TD/got" -w '%{http_code} %{size_download}\n' "$URL/big.bin" \
        >"$TD/curl.out" 2>"$TD/curl.err"
    assertEquals "curl exit status" 0 $?
    assertEquals "status and size" "200 $BIG" "$(cat "$TD/curl.out")"
    assertSameFile "1 MiB through sendfile" "$TD/www/big.bin" "$TD/got"
    nginx_stop
}

test_keepalive_three_transfers_one_connection() {
    local n
    nginx_start || { [ $? = 2 ] || fail "nginx did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    ccurl -w '%{num_connects}\n' "$URL/big.bin" "$URL/big.bin" "$URL/big.bin" \
        -o "$TD/a" -o "$TD/b" -o "$TD/c" >"$TD/curl.out" 2>"$TD/curl.err"
    assertEquals "curl exit status" 0 $?
    assertSameFile "transfer 1" "$TD/www/big.bin" "$TD/a"
    assertSameFile "transfer 2" "$TD/www/big.bin" "$TD/b"
    assertSameFile "transfer 3" "$TD/www/big.bin" "$TD/c"
    assertEquals "curl: new connections per transfer" "1 0 0" "$(tr '\n' ' ' <"$TD/curl.out" | sed 's/ $//')"
    nginx_stop
    cap_stop
    cap_check --preface "$PREFACE_HEX" --min-bytes $((3 * BIG))
    assertEquals "capture: sealed" 0 $?
    n=$(sed -n 's/^\([0-9][0-9]*\) connections,.*/\1/p' "$TD/capcheck.out")
    assertEquals "capture: TCP connections (SYNs)" 1 "$n"
    # the server agrees: one connection number, requests 1, 2, 3 on it
    assertEquals "access log: connection requests" "1 2 3" \
        "$(awk '{print $2}' "$TD/access.out" | tr '\n' ' ' | sed 's/ $//')"
    assertEquals "access log: one connection" 1 "$(awk '{print $1}' "$TD/access.out" | sort -u | wc -l)"
}

test_four_parallel_transfers() {
    local i
    nginx_start || { [ $? = 2 ] || fail "nginx did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    ccurl -Z --parallel-immediate --parallel-max 4 -w '%{http_code}\n' \
        "$URL/big.bin" -o "$TD/p1" "$URL/big.bin" -o "$TD/p2" \
        "$URL/big.bin" -o "$TD/p3" "$URL/big.bin" -o "$TD/p4" >"$TD/curl.out" 2>"$TD/curl.err"
    assertEquals "curl -Z exit status" 0 $?
    for i in 1 2 3 4; do
        assertSameFile "parallel transfer $i" "$TD/www/big.bin" "$TD/p$i"
    done
    assertEquals "four 200 responses" "200 200 200 200" "$(tr '\n' ' ' <"$TD/curl.out" | sed 's/ $//')"
    nginx_stop
    cap_stop
    cap_check --preface "$PREFACE_HEX" --min-conns 4 --min-bytes $((4 * BIG))
    assertEquals "capture: four sealed connections" 0 $?
}

test_small_files_and_404() {
    local n args=() code
    nginx_start || { [ $? = 2 ] || fail "nginx did not start"; return 0; }
    for n in $SMALL_SIZES; do args+=("$URL/s$n.bin" -o "$TD/got$n"); done
    ccurl -w '%{http_code} %{size_download}\n' "${args[@]}" >"$TD/curl.out" 2>"$TD/curl.err"
    assertEquals "curl exit status" 0 $?
    for n in $SMALL_SIZES; do
        assertSameFile "small file of $n bytes" "$TD/www/s$n.bin" "$TD/got$n"
        assertFileContains "200 and $n bytes" "$TD/curl.out" "^200 $n\$"
    done
    code=$(sealed curl -sS -o /dev/null -w '%{http_code}' "$URL/missing.bin" 2>"$TD/curl404.err")
    assertEquals "missing file" 404 "$code"
    nginx_stop
}

# A request body: nginx reads it in client_body_buffer_size pieces after
# an edge-triggered EPOLLIN, while each sealed record carries up to 64 KiB:
# what one read leaves decrypted inside the shim must still be reported.
test_put_upload_1MiB() {
    nginx_start || { [ $? = 2 ] || fail "nginx did not start"; return 0; }
    mkdata "$TD/up.bin" "$BIG"
    # (bounded: a stalled body read shows as curl's timeout, exit 28)
    ccurl -m 30 -T "$TD/up.bin" -w '%{http_code}\n' "$URL/up/up.bin" >"$TD/put.out" 2>"$TD/put.err"
    assertEquals "curl PUT exit status" 0 $?
    assertEquals "PUT: 201 Created" 201 "$(cat "$TD/put.out")"
    assertSameFile "nginx stored the upload" "$TD/up.bin" "$TD/www/up/up.bin"
    ccurl -o "$TD/got" "$URL/up/up.bin" 2>"$TD/get.err"
    assertEquals "curl GET exit status" 0 $?
    assertSameFile "upload read back" "$TD/up.bin" "$TD/got"
    nginx_stop
}

test_capture_marker_never_on_wire() {
    nginx_start || { [ $? = 2 ] || fail "nginx did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    ccurl -o "$TD/got.txt" "$URL/marked.txt" 2>"$TD/curl.err"
    assertEquals "curl exit status" 0 $?
    ccurl -o "$TD/got.bin" "$URL/big.bin" 2>"$TD/curl2.err"
    assertEquals "curl 2 exit status" 0 $?
    assertSameFile "marked text file" "$TD/www/marked.txt" "$TD/got.txt"
    assertSameFile "1 MiB" "$TD/www/big.bin" "$TD/got.bin"
    nginx_stop
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$MARK" --marker "marked.txt" --min-conns 2 \
        --min-bytes $((BIG + 200000))
    assertEquals "capture: preface on every connection, no marker, no URL" 0 $?
}

. shunit2
