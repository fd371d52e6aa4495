#!/bin/bash
# uwsgi (prefork: the master loads the WSGI app, tests/programs/wsgi_app.py,
# then forks 4 sync workers that all accept on the shared listener; each
# worker serves one keep-alive connection at a time with blocking I/O;
# wsgi.file_wrapper bodies go out with sendfile(), the rest with write;
# SIGHUP: graceful reload, the master re-execs itself), sealed, with
# sealed clients (tests/programs/http_ka.py).  Bodies are checked by sha256;
# the capture shows the preface on every connection and no plaintext.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/http_lib.sh"

UWSGI=$(command -v uwsgi || echo /usr/bin/uwsgi)
APP=$PROGS/wsgi_app.py
BIG=$((2 * 1024 * 1024))
UP=$((1024 * 1024))

scenario_setup() {
    [ -x "$UWSGI" ] || echo "53-uwsgi: uwsgi missing (make install-deps)" >&2
}

# ustart: sealed uwsgi on PORT with 4 workers, the
# capture running; files $TD/www/big.bin and $TD/up.bin, marked with M.
ustart() {
    [ -x "$UWSGI" ] || { fail "uwsgi missing"; return 1; }
    san_can_run "$UWSGI" --version || { startSkipping; return 2; }
    PORT=$(free_port)
    loopback_policy "$PORT" || return 1
    M=$(newmarker)
    mkdir -p "$TD/www"
    mkmarked "$TD/www/big.bin" "$BIG" "$M"
    mkmarked "$TD/up.bin" "$UP" "$M"
    cap_start "$PORT" || return 1
    # --die-on-term: TERM stops (by default uwsgi 2.0 reloads on TERM)
    bg uwsgi sealed "$UWSGI" --plugin python3 --http11-socket "127.0.0.1:$PORT" \
        --master --processes 4 --wsgi-file "$APP" --need-app --env "WWW=$TD/www" \
        --die-on-term --pidfile "$TD/uwsgi.pid"
    wait_listen "$PORT" uwsgi 20 || return 1
    wait_file "$TD/uwsgi.pid"
}

# ustop CONNS BYTES: TERM to the master (its pid file: the timeout wrapper
# would signal the workers too); it kills its workers and exits 0; then
# the capture: CONNS sealed connections, BYTES at least, no plaintext.
ustop() {
    local rc=0
    assertTrue "uwsgi master still running" "running uwsgi"
    kill -TERM "$(cat "$TD/uwsgi.pid")"
    wait_bg uwsgi || rc=$?
    assertEquals "uwsgi: exit status after TERM" 0 "$rc"
    assertFileContains "uwsgi: clean shutdown" "$TD/uwsgi.err" "goodbye to uWSGI"
    assertFileNotContains "uwsgi: no worker died of a signal" "$TD/uwsgi.err" "killed by signal|segmentation|SIGSEGV|SIGABRT"
    cap_stop
    # (half of BYTES: tcpdump may drop packets on a loaded machine)
    cap_check --preface "$PREFACE_HEX" --marker "$M" --marker "/file/" --min-conns "$1" --min-bytes $(($2 / 2))
    assertEquals "capture: preface on every connection, no plaintext" 0 $?
}

# workers_of FILE: "distinct worker pids / connections on more than one".
workers_of() {
    local all split
    all=$(sed -n 's/.* X-Worker=\([0-9]*\)$/\1/p' "$1" | sort -u | wc -l)
    split=$(sed -n 's/^conn \([0-9]*\) req .* X-Worker=\([0-9]*\)$/\1 \2/p' "$1" |
        sort -u | awk '{print $1}' | uniq -d | wc -l)
    echo "$all/$split"
}

# 4 connections at once, 2 rounds each of: 2 MiB by sendfile, 2 MiB by
# write, 1 MiB POST echoed.  A sync worker keeps its connection until the
# client closes it, so the 4 connections are served by 4 workers, each
# connection by one.
test_four_workers_keepalive_sendfile_write_post() {
    ustart || { [ $? = 2 ] || fail "uwsgi did not start"; return 0; }
    ka "$PORT" --conns 4 --rounds 2 --get "/file/big.bin=$TD/www/big.bin" \
        --get "/bytes/big.bin=$TD/www/big.bin" --post "/echo=$TD/up.bin" --header X-Worker
    assertEquals "client exit status" 0 $?
    ka_check "$TD/ka.out" 4 6
    assertEquals "4 workers, one per connection" "4/0" "$(workers_of "$TD/ka.out")"
    assertEquals "uwsgi logged 8 sendfile() responses" 8 "$(grep -c 'GET /file/big.bin => generated 2097152 bytes .* via sendfile()' "$TD/uwsgi.err")"
    ustop 4 $((4 * 2 * (2 * BIG + 2 * UP)))
}

# 12 connections at once against 4 workers: 8 of them wait, handshake sent,
# in the listen queue until a worker is free.
test_twelve_connections_four_workers() {
    ustart || { [ $? = 2 ] || fail "uwsgi did not start"; return 0; }
    ka "$PORT" --conns 12 --get "/file/big.bin=$TD/www/big.bin" --post "/echo=$TD/up.bin"
    assertEquals "client exit status" 0 $?
    ka_check "$TD/ka.out" 12 2
    ustop 12 $((12 * (BIG + 2 * UP)))
}

# pids FILE: the worker pids that served the requests in FILE.
pids() { sed -n 's/.* X-Worker=\([0-9]*\)$/\1/p' "$1" | sort -u | tr '\n' ' '; }

# SIGHUP: graceful reload; the master waits for its workers, then re-execs
# itself (same pid, the listener inherited, the shim loaded again from the
# environment) and forks 4 new workers, which serve sealed as before.
test_graceful_reload_reexec() {
    local master before after i p
    ustart || { [ $? = 2 ] || fail "uwsgi did not start"; return 0; }
    master=$(cat "$TD/uwsgi.pid")
    ka "$PORT" --conns 4 --get "/file/big.bin=$TD/www/big.bin" --header X-Worker
    assertEquals "client before the reload: exit status" 0 $?
    ka_check "$TD/ka.out" 4 1
    before=$(pids "$TD/ka.out")
    cp "$TD/ka.out" "$TD/ka-before.out"
    kill -HUP "$master"
    for ((i = 0; i < 400; i++)); do
        [ "$(grep -c 'spawned uWSGI worker 4 ' "$TD/uwsgi.err")" -ge 2 ] && break
        sleep 0.05
    done
    assertFileContains "uwsgi re-exec'd itself" "$TD/uwsgi.err" "binary reloading uWSGI"
    assertEquals "uwsgi: 4 workers spawned again" 2 "$(grep -c 'spawned uWSGI worker 4 ' "$TD/uwsgi.err")"
    assertEquals "the master kept its pid across the exec" "$master" "$(cat "$TD/uwsgi.pid")"
    ka "$PORT" --conns 4 --get "/file/big.bin=$TD/www/big.bin" --post "/echo=$TD/up.bin" --header X-Worker
    assertEquals "client after the reload: exit status" 0 $?
    ka_check "$TD/ka.out" 4 2
    after=$(pids "$TD/ka.out")
    for p in $after; do
        case " $before" in *" $p "*) fail "worker $p served before and after the reload" ;; esac
    done
    ustop 8 $((8 * BIG + 8 * UP))
}

. shunit2
