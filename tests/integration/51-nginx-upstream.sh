#!/bin/bash
# nginx in front of a sealed upstream: the hop nginx -> upstream is sealed
# (nginx under the shim as the connecting side, the upstream under the shim
# as the accepting side), the client hop curl -> nginx is plain (curl runs
# without the shim, so it also runs under the sanitizer builds).
#
#   fastcgi: nginx fastcgi_pass to php-fpm (static pool of 3 workers, TCP),
#            a PHP script that readfile()s a 1 MiB or 16 MiB file;
#   proxy:   nginx proxy_pass to gunicorn (3 sync workers, a small WSGI app),
#            upstream keepalive 4, proxy_http_version 1.1.
#
# For each: buffering on (defaults), small buffers (4 x 4k) and buffering
# off.  nginx reads its upstream with edge-triggered epoll, stops reading
# when its buffers are full (while the upstream keeps sending) and resumes
# later; a read that returns less than it asked for is, for nginx, the end
# of what the socket holds (ngx_unix_recv: rev->ready = 0), and upstream
# bodies are read with readv.  Every response is checked by size and
# sha256; the capture on the upstream port shows the preface on every
# connection and never the marker inside the data.
#
# Each test runs its phases in order (4 serial 1 MiB, 8 parallel 1 MiB,
# 2 serial 16 MiB, 4 parallel 16 MiB) and stops at the first failed phase,
# so a stall costs one curl --max-time, not one per request.  Small buffers
# come with *_max_temp_file_size 0, so nginx must stop reading the upstream
# while its buffers are full instead of spilling to a temporary file.
#
# nginx registers an upstream socket with epoll before it calls connect()
# (ngx_event_connect_peer), i.e. before the shim knows the socket is
# sealed; test_helper_register_before_connect reproduces that without nginx
# (tests/helpers/et_connect_reader.c).
. "$(dirname "$0")/lib.sh"

PHPFPM=$(command -v php-fpm8.2 || command -v php-fpm || echo /usr/sbin/php-fpm8.2)
GUNICORN=$(command -v gunicorn || command -v gunicorn3 || echo /usr/bin/gunicorn)
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
MIB=$((1024 * 1024))
SERIAL=4            # serial requests of 1 MiB
SERIAL_BIG=2        # serial requests of 16 MiB
PARALLEL=8          # parallel requests of 1 MiB
PARALLEL_BIG=4      # parallel requests of 16 MiB
MAXTIME=20          # curl --max-time per request (a stall shows as exit 28)

scenario_setup() {
    [ -x "$NGINX" ] || echo "51-nginx-upstream: nginx missing (make install-deps)" >&2
    [ -x "$PHPFPM" ] || echo "51-nginx-upstream: php-fpm missing (make install-deps)" >&2
    [ -x "$GUNICORN" ] || echo "51-nginx-upstream: gunicorn missing (make install-deps)" >&2
    # the data, once for the suite: random, with a marker every ~1000 bytes
    MARK=$(newmarker)
    mkdir -p "$SUITE_TMP/data"
    mkmarked "$SUITE_TMP/data/1m.bin" "$MIB" "$MARK"
    mkmarked "$SUITE_TMP/data/4m.bin" $((4 * MIB)) "$MARK"
    mkmarked "$SUITE_TMP/data/16m.bin" $((16 * MIB)) "$MARK"
    chmod 755 "$SUITE_TMP" "$SUITE_TMP/data"
    chmod 644 "$SUITE_TMP"/data/*.bin
}

# up_setup: ports, key, policy (only the upstream hop is sealed).
up_setup() {
    UP=$(free_port)
    NPORT=$(free_port)
    while [ "$NPORT" = "$UP" ]; do NPORT=$(free_port); done
    URL=http://127.0.0.1:$NPORT
    loopback_policy "$UP" || return 1
    mkdir -p "$TD/tmp"
}

# nginx_conf LOCATION_BODY UPSTREAM_EXTRA: $TD/nginx.conf.
nginx_conf() {
    local user=
    [ "$(id -u)" = 0 ] && user="user root root;"
    cat >"$TD/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
$user
pid $TD/nginx.pid;
error_log $TD/nginx.err info;
events {
    worker_connections 256;
}
http {
    access_log $TD/access.out;
    client_body_temp_path $TD/tmp/body;
    proxy_temp_path $TD/tmp/proxy;
    fastcgi_temp_path $TD/tmp/fastcgi;
    uwsgi_temp_path $TD/tmp/uwsgi;
    scgi_temp_path $TD/tmp/scgi;
    keepalive_timeout 30s;
    upstream up {
        server 127.0.0.1:$UP;
        $2
    }
    server {
        listen 127.0.0.1:$NPORT;
        root $SUITE_TMP;
        location / {
            $1
        }
    }
}
EOF
}

# php_start: php-fpm (static pool of 3) on $UP, sealed, as "up".
php_start() {
    local user=() pooluser=
    [ -x "$PHPFPM" ] || { fail "php-fpm missing"; return 1; }
    san_can_run "$PHPFPM" -n -v || { startSkipping; return 2; }
    mkdir -p "$TD/www"
    cat >"$TD/www/get.php" <<EOF
<?php
\$f = '$SUITE_TMP/data/' . basename(\$_GET['f'] ?? '1m') . '.bin';
header('Content-Type: application/octet-stream');
header('Content-Length: ' . filesize(\$f));
readfile(\$f);
EOF
    # php-fpm refuses to run as root unless -R
    if [ "$(id -u)" = 0 ]; then
        user=(-R)
        pooluser="user = root
group = root"
    fi
    cat >"$TD/php-fpm.conf" <<EOF
[global]
pid = $TD/php-fpm.pid
error_log = $TD/php-fpm.log
daemonize = no
[pool]
listen = 127.0.0.1:$UP
$pooluser
pm = static
pm.max_children = 3
catch_workers_output = yes
EOF
    bg up sealed "$PHPFPM" -n -F "${user[@]}" -y "$TD/php-fpm.conf"
    wait_listen "$UP" up || { fail "php-fpm did not listen"; return 1; }
}

# gunicorn_start: gunicorn (3 sync workers) on $UP, sealed, as "up".
gunicorn_start() {
    [ -x "$GUNICORN" ] || { fail "gunicorn missing"; return 1; }
    san_can_run "$PY" -c 'import gunicorn' || { startSkipping; return 2; }
    mkdir -p "$TD/app"
    cat >"$TD/app/app.py" <<EOF
import os

DATA = "$SUITE_TMP/data"


def application(environ, start_response):
    name = os.path.basename(environ.get("PATH_INFO", "/1m.bin"))
    path = os.path.join(DATA, name)
    if not os.path.isfile(path):
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(os.path.getsize(path)))])

    def chunks():
        with open(path, "rb") as f:
            while True:
                b = f.read(65536)
                if not b:
                    return
                yield b
    return chunks()
EOF
    bg up sealed "$PY" "$GUNICORN" -w 3 -k sync -b "127.0.0.1:$UP" \
        --chdir "$TD/app" --log-level warning app:application
    wait_listen "$UP" up 20 || { fail "gunicorn did not listen"; return 1; }
}

# nginx_start: the sealed nginx as "srv".
nginx_start() {
    san_can_run "$NGINX" -V || { startSkipping; return 2; }
    bg srv sealed "$NGINX" -p "$TD" -c "$TD/nginx.conf" -e "$TD/nginx.err"
    wait_listen "$NPORT" srv || { fail "nginx did not listen"; return 1; }
}

# get OUT PATH: one plain curl request; prints "CODE SIZE" to OUT.meta.
get() {
    plain curl -sS --max-time "$MAXTIME" -o "$1" -w '%{http_code} %{size_download}\n' \
        "$URL$2" >"$1.meta" 2>"$1.err"
}

# check OUT SIZE: OUT is the data file of SIZE ('1m' / '16m').
check() {
    local ref=$SUITE_TMP/data/$2.bin
    [ -f "$1" ] && [ "$(fsize "$1")" = "$(fsize "$ref")" ] &&
        [ "$(sha "$1")" = "$(sha "$ref")" ]
}

# phase_serial SIZE URLPATH N: N requests one after another; stops at the
# first that fails.  Returns 1 (after fail) on a failure.
phase_serial() {
    local i rc
    for ((i = 1; i <= $3; i++)); do
        rc=0
        get "$TD/s$1-$i" "$2" || rc=$?
        REQS=$((REQS + 1))
        if [ "$rc" != 0 ] || ! check "$TD/s$1-$i" "$1"; then
            fail "serial $1 request $i of $3: curl exit $rc, got $(cat "$TD/s$1-$i.meta" 2>/dev/null) (want $(fsize "$SUITE_TMP/data/$1.bin") bytes, sha256 match) $(head -c 200 "$TD/s$1-$i.err")"
            return 1
        fi
    done
    return 0
}

# phase_parallel SIZE URLPATH N: N requests at once, each its own curl.
phase_parallel() {
    local i rc bad=0 pids=() msg=
    for ((i = 1; i <= $3; i++)); do
        get "$TD/p$1-$i" "$2" &
        pids[i]=$!
    done
    for ((i = 1; i <= $3; i++)); do
        rc=0
        wait "${pids[i]}" || rc=$?
        REQS=$((REQS + 1))
        if [ "$rc" != 0 ] || ! check "$TD/p$1-$i" "$1"; then
            bad=$((bad + 1))
            msg="$msg [#$i: curl exit $rc, got $(cat "$TD/p$1-$i.meta" 2>/dev/null)]"
        fi
    done
    if [ "$bad" != 0 ]; then
        fail "parallel $1: $bad of $3 failed (want $(fsize "$SUITE_TMP/data/$1.bin") bytes each, sha256 match):$msg"
        return 1
    fi
    return 0
}

# run_phases PATH1M PATH16M: every phase, until one fails; then the checks
# of the running programs and of the capture.
run_phases() {
    REQS=0
    phase_serial 1m "$1" "$SERIAL" &&
        phase_parallel 1m "$1" "$PARALLEL" &&
        phase_serial 16m "$2" "$SERIAL_BIG" &&
        phase_parallel 16m "$2" "$PARALLEL_BIG"
    assertTrue "nginx still running" "running srv"
    assertTrue "upstream still running" "running up"
    stop_bg srv TERM
    stop_bg up TERM
    cap_stop
    assertFileNotContains "no shim failure in nginx" "$TD/srv.err" "sockseal.*(fail|truncat)"
    assertFileNotContains "no shim failure in the upstream" "$TD/up.err" "sockseal.*(fail|truncat)"
    # every upstream connection sealed (one per request at least: php-fpm
    # and gunicorn's sync workers close after each response), the data's
    # marker never on the wire
    cap_check --preface "$PREFACE_HEX" --marker "$MARK" --min-conns "$REQS" \
        --min-bytes "$MIB"
    assertEquals "capture: preface on every upstream connection, no plaintext" 0 $?
    # the capture and the responses are ~200 MB: gone once checked, unless
    # asked to keep them
    [ "${KEEP_TMP:-0}" = 1 ] || rm -f "$CAP" "$TD"/[sp]1*m-*[0-9]
}

# fastcgi_case DIRECTIVES: php-fpm, nginx with DIRECTIVES in the location.
fastcgi_case() {
    local rc=0
    up_setup || { fail "setup"; return 0; }
    php_start || rc=$?
    [ "$rc" = 0 ] || { [ "$rc" = 2 ] || fail "php-fpm did not start"; return 0; }
    nginx_conf "fastcgi_pass up;
            fastcgi_param SCRIPT_FILENAME $TD/www/get.php;
            fastcgi_param QUERY_STRING \$query_string;
            fastcgi_param REQUEST_METHOD \$request_method;
            fastcgi_param CONTENT_TYPE \$content_type;
            fastcgi_param CONTENT_LENGTH \$content_length;
            fastcgi_param SCRIPT_NAME /get.php;
            fastcgi_param REQUEST_URI \$request_uri;
            fastcgi_param SERVER_PROTOCOL \$server_protocol;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
            fastcgi_param REMOTE_ADDR \$remote_addr;
            fastcgi_param SERVER_ADDR \$server_addr;
            fastcgi_param SERVER_PORT \$server_port;
            fastcgi_param SERVER_NAME \$server_name;
            $1" ""
    rc=0
    nginx_start || rc=$?
    [ "$rc" = 0 ] || { [ "$rc" = 2 ] || fail "nginx did not start"; return 0; }
    cap_start "$UP" || { fail "no capture"; return 0; }
    run_phases "/get.php?f=1m" "/get.php?f=16m"
}

# proxy_case DIRECTIVES: gunicorn, nginx with DIRECTIVES in the location.
proxy_case() {
    local rc=0
    up_setup || { fail "setup"; return 0; }
    gunicorn_start || rc=$?
    [ "$rc" = 0 ] || { [ "$rc" = 2 ] || fail "gunicorn did not start"; return 0; }
    nginx_conf "proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
            $1" "keepalive 4;"
    rc=0
    nginx_start || rc=$?
    [ "$rc" = 0 ] || { [ "$rc" = 2 ] || fail "nginx did not start"; return 0; }
    cap_start "$UP" || { fail "no capture"; return 0; }
    run_phases /1m.bin /16m.bin
}

# The mechanism without nginx (tests/helpers/et_connect_reader.c): a
# sealed client registers its socket with edge-triggered epoll before
# connect(), as nginx does for upstreams, and reads as ngx_readv_chain does
# (FIONREAD-counted readv, pauses as if its buffers were full); sealed socat
# sends 4 MiB and closes.  Registered after connect() as the control; and
# a client that never writes (server speaks first), whose handshake has
# only epoll to advance it.
test_helper_register_before_connect() {
    local mode out rc n=0
    [ -x "$B/tests/et_connect_reader" ] || { fail "$B/tests/et_connect_reader missing (make helpers)"; return 0; }
    up_setup || { fail "setup"; return 0; }
    # Both ways, so socat reads the client's request line: a server that
    # closes with bytes unread resets the connection, on TCP and sealed.
    bg up sealed socat "TCP-LISTEN:$UP,bind=127.0.0.1,reuseaddr,fork" \
        SYSTEM:"exec cat '$SUITE_TMP/data/4m.bin'"
    wait_listen "$UP" up || { fail "socat did not listen"; return 0; }
    cap_start "$UP" || { fail "no capture"; return 0; }
    for mode in late early "late silent" "early silent"; do
        rc=0
        # shellcheck disable=SC2086
        out=$(sealed "$B/tests/et_connect_reader" "$UP" $((4 * MIB)) $mode 2>&1) || rc=$?
        n=$((n + 1))
        assertEquals "registered $mode: all 4 MiB and the end ($out)" 0 "$rc"
    done
    stop_bg up TERM
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$MARK" --min-conns "$n" --min-bytes "$MIB"
    assertEquals "capture: preface on every connection, no plaintext" 0 $?
}

test_fastcgi_buffered() { fastcgi_case ""; }
test_fastcgi_small_buffers() {
    fastcgi_case "fastcgi_buffers 4 4k; fastcgi_buffer_size 4k; fastcgi_max_temp_file_size 0;"
}
test_fastcgi_unbuffered() { fastcgi_case "fastcgi_buffering off;"; }
test_proxy_buffered() { proxy_case ""; }
test_proxy_small_buffers() {
    proxy_case "proxy_buffers 4 4k; proxy_buffer_size 4k; proxy_max_temp_file_size 0;"
}
test_proxy_unbuffered() { proxy_case "proxy_buffering off;"; }

. shunit2
