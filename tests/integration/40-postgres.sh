#!/bin/bash
# PostgreSQL server and its clients (psql, createdb, pgbench), both ends
# sealed.  The postmaster accepts and forks a backend per connection (no
# exec); the parent closes its copy, the backend speaks through epoll on a
# non-blocking socket; libpq connects non-blocking (EINPROGRESS) and speaks
# first (SSLRequest); pgbench -j runs a thread per client group.  The server
# runs as user postgres (tests run as root).
. "$(dirname "$0")/lib.sh"

PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

# One cluster made once per suite (initdb takes seconds); each test starts
# postgres on its own copy.  initdb touches no TCP socket: it runs plain.
scenario_setup() {
    PGTEMPLATE=$SUITE_TMP/pgtemplate
    if [ ! -x "$PGBIN/postgres" ]; then
        echo "40-postgres: no /usr/lib/postgresql/*/bin/postgres (tests/install-deps.sh)" >&2
        return 0
    fi
    # Under SAN=asan the sanitizer runtime is preloaded first; this
    # uninstrumented postgres deadlocks with it even for --version, shim or
    # not (a futex wait right after start): nothing to test then.
    PG_SKIP=
    if [ -n "$SAN_RT" ] && ! timeout -k 2 10 env LD_PRELOAD="$SAN_RT" "${SAN_ENV[@]}" \
        "$PGBIN/postgres" --version >/dev/null 2>&1; then
        PG_SKIP="postgres does not run with $SAN_RT preloaded (without the shim)"
        return 0
    fi
    # user postgres must reach the per-test dirs under the suite dir
    chmod 755 "$SUITE_TMP"
    mkdir -p "$PGTEMPLATE"
    chown postgres: "$PGTEMPLATE"
    (cd / && timeout -k 5 120 runuser -u postgres -- "$PGBIN/initdb" -D "$PGTEMPLATE" \
        -U postgres -A trust -E UTF8 --locale=C --no-sync) >"$SUITE_TMP/initdb.log" 2>&1 ||
        { echo "40-postgres: initdb failed:" >&2; tail -n 20 "$SUITE_TMP/initdb.log" >&2; }
}

# tearDown: stop the postmaster this test started, then lib.sh's tearDown.
eval "lib_tearDown() $(declare -f tearDown | sed 1d)"
tearDown() {
    pg_stop
    lib_tearDown
}

# pg_setup: key, policy, data dir and socket dir for this test; sets PORT,
# PGDATA_DIR, PGRUN.  The policy and key must be readable by user postgres:
# $TD is made 0755, the policy is 0644, and the key keeps mode 0600 but is
# chowned to postgres (the root-run clients read it as root).
pg_setup() {
    if [ -n "${PG_SKIP:-}" ]; then
        echo "    SKIPPED: $PG_SKIP"
        startSkipping
        return 2
    fi
    [ -f "$PGTEMPLATE/PG_VERSION" ] || { echo "no initdb template" >&2; return 1; }
    chmod 755 "$TD"
    PORT=$(free_port)
    mkkey k >/dev/null || return 1
    chown postgres: "$TD/k.key"
    write_policy <<EOF
key k $TD/k.key
connect 127.0.0.1:$PORT key=k
accept 127.0.0.1:$PORT key=k
EOF
    chmod 644 "$POLICY"
    PGDATA_DIR=$TD/pgdata
    PGRUN=$TD/pgrun
    cp -a "$PGTEMPLATE" "$PGDATA_DIR"
    mkdir -p "$PGRUN"
    chown postgres: "$PGRUN"
}

# pg_start: the postmaster, sealed, as user postgres.  runuser may reset the
# environment, so LD_PRELOAD and SOCKSEAL_POLICY are set by env inside it.
pg_start() {
    bg pg plain runuser -u postgres -- env LD_PRELOAD="$PRELOAD" SOCKSEAL_POLICY="$POLICY" \
        "${SAN_ENV[@]}" "$PGBIN/postgres" -D "$PGDATA_DIR" -k "$PGRUN" -p "$PORT" \
        -h 127.0.0.1 -F
    wait_listen "$PORT" pg 20 || return 1
    wait_line "$TD/pg.err" "database system is ready to accept connections" 20
}

# pg_stop: fast shutdown of the postmaster of this test's data dir, by the
# PID in its postmaster.pid; SIGQUIT then SIGKILL if it does not go.
pg_stop() {
    local pid i
    if [ -z "${PGDATA_DIR:-}" ] || [ ! -f "$PGDATA_DIR/postmaster.pid" ]; then
        PGDATA_DIR=
        return 0
    fi
    pid=$(head -n 1 "$PGDATA_DIR/postmaster.pid")
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -INT "$pid" 2>/dev/null
        for ((i = 0; i < 200; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        if kill -0 "$pid" 2>/dev/null; then
            echo "pg_stop: postmaster $pid ignored SIGINT for 10 s; SIGQUIT" >&2
            kill -QUIT "$pid" 2>/dev/null
            sleep 2
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    wait_bg pg 2>/dev/null
    PGDATA_DIR=
    return 0
}

# spsql ARGS...: sealed psql over TCP as the superuser, unaligned tuples only.
spsql() {
    sealed "$PGBIN/psql" -X -w -h 127.0.0.1 -p "$PORT" -U postgres -v ON_ERROR_STOP=1 -At "$@"
}

# assert_no_shim_log FILE: the shim logged nothing (it logs on errors only).
assert_no_shim_log() {
    assertFileNotContains "no sockseal log lines in ${1#"$TD"/}" "$1" 'sockseal\[[0-9]+\]'
}

test_psql_select_1() {
    pg_setup || { fail "setup"; return 0; }
    pg_start || { fail "postgres did not start"; return 0; }
    spsql -d postgres -c 'select 1' >"$TD/psql.out" 2>"$TD/psql.err"
    assertEquals "psql exit status" 0 $?
    assertEquals "psql: select 1" "1" "$(cat "$TD/psql.out")"
    # the same query again: a second backend forked by the same postmaster
    spsql -d postgres -c "select 'again', 2" >"$TD/psql2.out" 2>"$TD/psql2.err"
    assertEquals "second psql exit status" 0 $?
    assertEquals "second psql" "again|2" "$(cat "$TD/psql2.out")"
    # the server is sealed: an unsealed client gets nothing out of it
    plain "$PGBIN/psql" -X -w -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -At \
        -c 'select 1' >"$TD/plainpsql.out" 2>"$TD/plainpsql.err"
    assertNotEquals "an unsealed psql is refused by the sealed server" 0 $?
    assertFileNotContains "the unsealed psql got no result" "$TD/plainpsql.out" '^1$'
    assertTrue "postmaster still running" "running pg"
    assertFileContains "the server logs the refused plaintext client with its rule" "$TD/pg.err" \
        "sockseal\\[[0-9]+\\]: .*policy:3.*preface"
    assert_no_shim_log "$TD/psql.err"
    assert_no_shim_log "$TD/psql2.err"
}

# The 640000-character string_agg(md5(i::text)) for i in 1..20000, in order,
# sent from the server to the client; its md5 is computed three ways: from
# the bytes psql printed, by the server, and here without postgres at all.
test_psql_640KB_result() {
    local agg='string_agg(md5(i::text), $$$$ order by i)' from='from generate_series(1, 20000) i'
    local want got server
    pg_setup || { fail "setup"; return 0; }
    pg_start || { fail "postgres did not start"; return 0; }
    spsql -d postgres -c "select $agg $from" >"$TD/big.out" 2>"$TD/big.err"
    assertEquals "psql (big result) exit status" 0 $?
    # psql -At ends the value with one newline
    assertEquals "result size (640000 + newline)" 640001 "$(fsize "$TD/big.out")"
    got=$(head -c 640000 "$TD/big.out" | md5sum | cut -d' ' -f1)
    spsql -d postgres -c "select md5($agg) $from" >"$TD/md5.out" 2>"$TD/md5.err"
    assertEquals "psql (server md5) exit status" 0 $?
    server=$(cat "$TD/md5.out")
    want=$("$PY" -c '
import hashlib
s = "".join(hashlib.md5(str(i).encode()).hexdigest() for i in range(1, 20001))
print(hashlib.md5(s.encode()).hexdigest())')
    assertEquals "server md5 = md5 computed without postgres" "$want" "$server"
    assertEquals "md5 of the bytes psql received = expected" "$want" "$got"
    assert_no_shim_log "$TD/pg.err"
}

# Client to server: 1 MiB of text lines through COPY FROM STDIN, checked by
# the server's md5 of what it stored.
test_copy_in_1MiB() {
    local want
    pg_setup || { fail "setup"; return 0; }
    pg_start || { fail "postgres did not start"; return 0; }
    head -c $((768 * 1024)) /dev/urandom | base64 -w 76 >"$TD/lines"
    want=$(md5sum <"$TD/lines" | cut -d' ' -f1)
    spsql -d postgres -c 'create table up (n serial primary key, line text)' \
        >"$TD/create.out" 2>"$TD/create.err"
    assertEquals "create table exit status" 0 $?
    spsql -d postgres -c 'copy up (line) from stdin' <"$TD/lines" >"$TD/copy.out" 2>"$TD/copy.err"
    assertEquals "copy from stdin exit status" 0 $?
    assertEquals "rows stored" "$(wc -l <"$TD/lines")" \
        "$(spsql -d postgres -c 'select count(*) from up' 2>"$TD/count.err")"
    assertEquals "server md5 of the stored lines = md5 of the file" "$want" \
        "$(spsql -d postgres -c "select md5(string_agg(line || E'\\n', '' order by n)) from up" \
            2>"$TD/md5.err")"
    assert_no_shim_log "$TD/pg.err"
}

test_createdb() {
    pg_setup || { fail "setup"; return 0; }
    pg_start || { fail "postgres did not start"; return 0; }
    sealed "$PGBIN/createdb" -w -h 127.0.0.1 -p "$PORT" -U postgres sealeddb \
        >"$TD/createdb.out" 2>"$TD/createdb.err"
    assertEquals "createdb exit status" 0 $?
    spsql -d sealeddb -c 'select current_database()' >"$TD/cur.out" 2>"$TD/cur.err"
    assertEquals "psql -d sealeddb exit status" 0 $?
    assertEquals "connected to the new database" "sealeddb" "$(cat "$TD/cur.out")"
    spsql -d postgres -c "select datname from pg_database where datname = 'sealeddb'" \
        >"$TD/list.out" 2>"$TD/list.err"
    assertEquals "the new database is listed" "sealeddb" "$(cat "$TD/list.out")"
    assert_no_shim_log "$TD/createdb.err"
    assert_no_shim_log "$TD/pg.err"
}

test_pgbench_two_clients_two_threads() {
    pg_setup || { fail "setup"; return 0; }
    pg_start || { fail "postgres did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    sealed "$PGBIN/pgbench" -i -h 127.0.0.1 -p "$PORT" -U postgres postgres \
        >"$TD/init.out" 2>"$TD/init.err"
    assertEquals "pgbench -i exit status" 0 $?
    assertFileContains "pgbench -i finished" "$TD/init.err" '^done in '
    sealed "$PGBIN/pgbench" -c 2 -j 2 -t 50 -h 127.0.0.1 -p "$PORT" -U postgres postgres \
        >"$TD/bench.out" 2>"$TD/bench.err"
    assertEquals "pgbench exit status" 0 $?
    assertFileContains "every transaction processed" "$TD/bench.out" \
        '^number of transactions actually processed: 100/100$'
    assertFileContains "no failed transactions" "$TD/bench.out" \
        '^number of failed transactions: 0 '
    assertEquals "history rows written by the 100 transactions" 100 \
        "$(spsql -d postgres -c 'select count(*) from pgbench_history' 2>"$TD/hist.err")"
    cap_stop
    # pgbench -i: 1 connection; the run: 2 clients (+ its own setup)
    cap_check --preface "$PREFACE_HEX" --min-conns 4
    assertEquals "capture: every connection starts with the preface" 0 $?
    assert_no_shim_log "$TD/bench.err"
    assert_no_shim_log "$TD/pg.err"
}

test_capture_preface_and_no_plaintext() {
    local m
    m=$(newmarker)
    pg_setup || { fail "setup"; return 0; }
    pg_start || { fail "postgres did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    spsql -d postgres -c 'create table secrets (s text)' >"$TD/c1.out" 2>"$TD/c1.err"
    assertEquals "create table exit status" 0 $?
    spsql -d postgres -c "insert into secrets values ('$m')" >"$TD/c2.out" 2>"$TD/c2.err"
    assertEquals "insert exit status" 0 $?
    spsql -d postgres -c 'select s from secrets' >"$TD/c3.out" 2>"$TD/c3.err"
    assertEquals "select exit status" 0 $?
    assertEquals "the marker read back" "$m" "$(cat "$TD/c3.out")"
    cap_stop
    # the marker went up in the INSERT and came down in the SELECT result;
    # the "INSERT 0 1" command tag and the startup packet's parameter name
    # "application_name" would be on the wire in plaintext too
    cap_check --preface "$PREFACE_HEX" --marker "$m" --marker "INSERT 0 1" \
        --marker "application_name" --min-conns 3
    assertEquals "capture: preface on every connection, no plaintext" 0 $?
    assert_no_shim_log "$TD/pg.err"
}

. shunit2
