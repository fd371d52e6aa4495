#!/bin/bash
# apache2 (Debian's httpd 2.4, its own config, run in the foreground with
# -D FOREGROUND: a root parent and worker children running as nobody) and
# curl (a python http.client client where curl cannot start: under the
# sanitizer runtimes), both sealed, with two MPMs:
#  - event: per child, a listener thread waits in epoll_wait on a pollset
#    (listener, wakeup pipe) while worker threads add connections to it
#    (keep-alive, lingering close) and wake it through the pipe;
#  - prefork: one connection per child, blocking I/O.
# Each round: start, keep-alive (three URLs on one curl connection), four
# parallel 2 MB downloads, then a graceful stop (SIGWINCH, what
# `apache2 -k graceful-stop` sends) or a SIGTERM stop, alternately; 20
# rounds per MPM.  Every body is checked by sha256, the error log must not
# mention a crashed child ("exit signal", "Segmentation fault"), the shim
# (SOCKSEAL_LOG=warn) must log nothing, and the first two rounds (one of
# each stop) run under a capture: the preface on every connection, neither
# the marker nor a request path in plaintext.
#
# test_epoll_wait_in_progress_sees_late_sealed_add is the event MPM's crash
# reduced to one process (tests/programs/epoll_late_add.py): a thread
# already blocked in epoll_wait when another thread adds a sealed fd to the
# same instance must get the program's data, not the shim's kernel tag.
# test_wait_on_dup_* (tests/programs/epoll_dup.py): the same for a wait on
# a dup of the epoll fd, also after the original was closed.
. "$(dirname "$0")/lib.sh"

APACHE=${APACHE:-/usr/sbin/apache2}
MODS=/usr/lib/apache2/modules
LATE_ADD=$PROGS/epoll_late_add.py
EP_DUP=$PROGS/epoll_dup.py
HTTP_GET=$PROGS/http_get.py
BIG=$((2 * 1024 * 1024))
ROUNDS=${APACHE_ROUNDS:-20}
CAPTURED=2          # rounds under tcpdump (one of each stop)

scenario_setup() {
    [ -x "$APACHE" ] || echo "50-apache: apache2 missing (make install-deps)" >&2
}

# Where curl cannot run (curl_usable, lib.sh) the same GETs are made by a
# sealed python client (tests/programs/http_get.py), so apache2 is still
# tested under the sanitizer; a test is skipped only if neither runs, and
# never run unsealed.

# apache_setup MPM: policy, document root and $TD/httpd.conf for MPM
# (event|prefork); sets PORT, URL, MARK.  Returns 2 when the test cannot
# run here (it says why).
apache_setup() {
    local mpm=$1 user=
    [ -x "$APACHE" ] || { echo "    apache2 missing"; return 1; }
    CLIENT=curl
    if ! curl_usable; then
        echo "    curl does not run under the sanitizer runtime $SAN_RT: python client"
        san_can_run "$PY" -c pass || return 2
        CLIENT=py
    fi
    san_can_run "$APACHE" -v || return 2
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
    loopback_policy "$PORT" || return 1
    mkdir -p "$TD/www" "$TD/run"
    mkdata "$TD/www/big.bin" "$BIG"
    mkdata "$TD/www/s100.bin" 100
    MARK=$(newmarker)
    mkmarked "$TD/www/marked.txt" 200000 "$MARK"
    # httpd refuses to serve as root: as root the children run as nobody
    # (the parent, which opens the logs and the listener, stays root), so
    # the document root is opened up; the key stays 0600 (read in the
    # shim's constructor, before the switch).
    if [ "$(id -u)" = 0 ]; then
        chmod 711 "$SUITE_TMP" "$TD"
        chmod 755 "$TD/www"
        chmod 644 "$TD"/www/*
        if ! setpriv --reuid=nobody --regid=nogroup --clear-groups \
            test -r "$TD/www/big.bin" 2>/dev/null; then
            echo "    SKIPPED: nobody cannot read $TD/www (apache2 will not serve as root)"
            return 2
        fi
        user="User nobody
Group nogroup"
    fi
    cat >"$TD/httpd.conf" <<EOF
ServerRoot $TD
ServerName 127.0.0.1
LoadModule mpm_${mpm}_module $MODS/mod_mpm_$mpm.so
LoadModule authz_core_module $MODS/mod_authz_core.so
$user
Listen 127.0.0.1:$PORT
PidFile $TD/run/httpd.pid
DefaultRuntimeDir $TD/run
Mutex file:$TD/run default
ErrorLog $TD/error.log
LogLevel notice
LogFormat "%P %{remote}p %k %>s %B \"%r\"" conn
CustomLog $TD/access.log conn
KeepAlive On
KeepAliveTimeout 5
MaxKeepAliveRequests 100
EnableSendfile On
GracefulShutdownTimeout 20
DocumentRoot $TD/www
<Directory $TD/www>
    Require all granted
</Directory>
<IfModule mpm_event_module>
    StartServers 2
    ServerLimit 4
    ThreadsPerChild 10
    MinSpareThreads 10
    MaxSpareThreads 40
    MaxRequestWorkers 40
</IfModule>
<IfModule mpm_prefork_module>
    StartServers 5
    MinSpareServers 5
    MaxSpareServers 10
    MaxRequestWorkers 10
</IfModule>
EOF
    : >"$TD/error.log"
    # The shim re-reads a policy or key changed within a tenth of a second
    # of its load (reload.c, "racy"); the children would do that as nobody,
    # who cannot read the 0600 key, and log a failed reload.  Start once
    # both have settled (ctime whole seconds back), as in a real deployment.
    settle "$TD/k.key" "$POLICY"
}

# settle FILE...: until each FILE's ctime is at least 2 s in the past (<= 3 s).
settle() {
    local f i
    for f in "$@"; do
        for ((i = 0; i < 30; i++)); do
            [ $(($(date +%s) - $(stat -c %Z "$f"))) -ge 2 ] && break
            sleep 0.1
        done
    done
}

# apache_start: the sealed parent as background "srv", shim logging at
# warn; waits until it listens and has written its pid file (APACHE_PID).
apache_start() {
    local i
    rm -f "$TD/run/httpd.pid"
    bg srv sealed env SOCKSEAL_LOG=warn "$APACHE" -D FOREGROUND -f "$TD/httpd.conf"
    wait_listen "$PORT" srv || return 1
    wait_file "$TD/run/httpd.pid" 10 || return 1
    APACHE_PID=$(cat "$TD/run/httpd.pid")
    # the pid file names the process we started (timeout -> apache2)
    for ((i = 0; i < 20; i++)); do
        [ "$(awk '/^PPid:/ {print $2}' "/proc/$APACHE_PID/status" 2>/dev/null)" = \
            "${BGPID[srv]}" ] && return 0
        sleep 0.05
    done
    echo "apache_start: pid file $APACHE_PID is not the child of ${BGPID[srv]}" >&2
    return 1
}

# apache_stop WINCH|TERM: graceful-stop or stop; waits for the parent (it
# waits for its children); returns its exit status.
apache_stop() {
    local rc=0
    kill "-$1" "$APACHE_PID" || return 1
    wait_bg srv || rc=$?
    return "$rc"
}

# ccurl ARGS...: a sealed curl that fails on HTTP errors.
ccurl() { sealed curl -sS --no-progress-meter --fail --max-time 30 "$@"; }

# get_keepalive: marked.txt, big.bin, s100.bin on one connection into
# $TD/ka1..3; a line "STATUS NEW-CONNECTIONS" each.
get_keepalive() {
    if [ "$CLIENT" = curl ]; then
        ccurl -w '%{http_code} %{num_connects}\n' \
            "$URL/marked.txt" -o "$TD/ka1" "$URL/big.bin" -o "$TD/ka2" \
            "$URL/s100.bin" -o "$TD/ka3"
    else
        sealed "$PY" "$HTTP_GET" "$PORT" keepalive "$TD/ka" /marked.txt /big.bin /s100.bin
    fi
}

# get_parallel: big.bin four times at once into $TD/p1..4; a line "STATUS" each.
get_parallel() {
    if [ "$CLIENT" = curl ]; then
        ccurl -Z --parallel-immediate --parallel-max 4 -w '%{http_code}\n' \
            "$URL/big.bin" -o "$TD/p1" "$URL/big.bin" -o "$TD/p2" \
            "$URL/big.bin" -o "$TD/p3" "$URL/big.bin" -o "$TD/p4"
    else
        sealed "$PY" "$HTTP_GET" "$PORT" parallel "$TD/p" /big.bin /big.bin /big.bin /big.bin
    fi
}

# one_round N STOP: keep-alive, parallel downloads, stop; asserts.
one_round() {
    local n=$1 stop=$2 i rc ka
    apache_start || { fail "round $n: apache2 did not start"; return 1; }
    # three URLs on one connection
    get_keepalive >"$TD/ka.out" 2>"$TD/ka.err"
    assertEquals "round $n: keep-alive $CLIENT exit status" 0 $?
    assertEquals "round $n: three 200s on one new connection" "200 1 200 0 200 0" \
        "$(tr '\n' ' ' <"$TD/ka.out" | sed 's/ $//')"
    assertSameFile "round $n: keep-alive marked.txt" "$TD/www/marked.txt" "$TD/ka1"
    assertSameFile "round $n: keep-alive big.bin" "$TD/www/big.bin" "$TD/ka2"
    assertSameFile "round $n: keep-alive s100.bin" "$TD/www/s100.bin" "$TD/ka3"
    # the server agrees: its last three requests came on one connection
    # (one client port), as keep-alive requests 0, 1, 2
    ka=$(tail -n 3 "$TD/access.log" | awk '{print $3}' | tr '\n' ' ' | sed 's/ $//')
    assertEquals "round $n: access log: keep-alive request numbers" "0 1 2" "$ka"
    assertEquals "round $n: access log: one client port" 1 \
        "$(tail -n 3 "$TD/access.log" | awk '{print $2}' | sort -u | wc -l)"
    # four at once
    get_parallel >"$TD/par.out" 2>"$TD/par.err"
    assertEquals "round $n: parallel $CLIENT exit status" 0 $?
    assertEquals "round $n: four 200s" "200 200 200 200" \
        "$(tr '\n' ' ' <"$TD/par.out" | sed 's/ $//')"
    for i in 1 2 3 4; do
        assertSameFile "round $n: parallel download $i" "$TD/www/big.bin" "$TD/p$i"
    done
    rm -f "$TD"/ka[123] "$TD"/p[1234]
    rc=0
    apache_stop "$stop" || rc=$?
    assertEquals "round $n: apache2 exit status after SIG$stop" 0 "$rc"
    assertFalse "round $n: apache2 removed its pid file (clean exit)" "[ -e '$TD/run/httpd.pid' ]"
    return 0
}

# rounds MPM: $ROUNDS rounds, the first $CAPTURED captured; then the logs.
rounds() {
    local n stop conns
    apache_setup "$1"
    case $? in
        0) ;;
        2) startSkipping; return 0 ;;
        *) fail "apache2 setup failed"; return 0 ;;
    esac
    cap_start "$PORT" || { fail "no capture"; return 0; }
    for ((n = 1; n <= ROUNDS; n++)); do
        stop=TERM
        [ $((n % 2)) = 1 ] && stop=WINCH
        one_round "$n" "$stop" || break
        if [ "$n" = "$CAPTURED" ]; then
            cap_stop
            cap_check --preface "$PREFACE_HEX" --marker "$MARK" --marker "marked.txt" \
                --marker "GET /" --min-conns $((CAPTURED * 5)) \
                --min-bytes $((CAPTURED * (5 * BIG + 200000)))
            assertEquals "capture of rounds 1-$CAPTURED: preface on every connection, no plaintext" 0 $?
            conns=$(sed -n 's/^\([0-9][0-9]*\) connections,.*/\1/p' "$TD/capcheck.out")
            assertEquals "capture: five connections per round" $((CAPTURED * 5)) "$conns"
        fi
    done
    assertEquals "rounds completed" "$ROUNDS" "$((n - 1))"
    assertEquals "GETs served and logged (7 per round)" $((ROUNDS * 7)) \
        "$(awk '$4 == 200 && $6 == "\"GET"' "$TD/access.log" 2>/dev/null | wc -l)"
    assertFileNotContains "no child crashed" "$TD/error.log" "exit signal|Segmentation fault|AH00051|AH00052"
    assertFileNotContains "the shim logged nothing (error log)" "$TD/error.log" "sockseal\\["
    assertFileNotContains "the shim logged nothing (stderr)" "$TD/srv.err" "sockseal\\["
    assertFileContains "apache2 started with the $1 MPM" "$TD/error.log" "mpm_$1:notice"
}

test_event_rounds() { rounds event; }

test_prefork_rounds() { rounds prefork; }

# echo_prog NAME PROGRAM ARGS...: PROGRAM (sealed, output in $TD/NAME.out)
# against a sealed socat echo server on a fresh port, given as PROGRAM's
# first argument, under a capture; asserts it printed OK, and the capture.
echo_prog() {
    local name=$1 prog=$2 port rc=0
    shift 2
    port=$(free_port)
    loopback_policy "$port" || { fail "no key"; return 0; }
    cap_start "$port" || { fail "no capture"; return 0; }
    bg srv sealed socat -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" EXEC:cat
    wait_listen "$port" srv || { fail "echo server did not listen"; return 0; }
    sealed "$PY" "$prog" "$port" "$@" >"$TD/$name.out" 2>"$TD/$name.err" || rc=$?
    assertEquals "$name exit status" 0 "$rc"
    assertFileContains "$name: the wait reported the socket's own fd" "$TD/$name.out" "^OK fd="
    stop_bg srv
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "ping" --marker "hello" --min-conns 1 --min-bytes 1
    assertEquals "capture: sealed" 0 $?
}

test_epoll_wait_in_progress_sees_late_sealed_add() { echo_prog late "$LATE_ADD"; }

# Found beside the apache mechanism: a wait on another fd of the epoll
# instance (dup), also after the first one was closed: the shim knows an
# instance only by the number it was created with.
test_wait_on_dup_of_epoll_fd() { echo_prog dup "$EP_DUP" dup; }

test_wait_on_dup_after_epoll_fd_closed() { echo_prog dupclose "$EP_DUP" dup-close; }

. shunit2
