#!/bin/bash
# Statistics (issue 16): every shimmed process keeps its counters in
# SOCKSEAL_STATS_DIR/PID.stats; `sockseal stats` sums the live ones by
# program and rule in the Prometheus text format (promtool and the Python
# prometheus_client parser accept it) or as JSON.  The counts match what
# the test did: sealed redis-cli calls (bytes exact), a wrong key, a
# plaintext client, a connection held open (live), a reload and a failed
# one; a killed process's file is removed, an exiting one removes its own;
# a process in a sandbox (no_new_privs) keeps counting.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/redis_lib.sh"

setUp_stats() {
    SOCKSEAL_STATS_DIR=$TD/stats
    export SOCKSEAL_STATS_DIR
    mkdir -m 1777 "$SOCKSEAL_STATS_DIR"
}

# stats_prom: `sockseal stats` into $TD/stats.prom, checked by promtool and
# parsed by prometheus_client into $TD/stats.tsv (NAME{labels} VALUE).
stats_prom() {
    "$LAUNCHER" stats >"$TD/stats.prom" 2>"$TD/stats.err"
    assertEquals "sockseal stats exit status ($(cat "$TD/stats.err"))" 0 $?
    promtool check metrics <"$TD/stats.prom" >"$TD/promtool.out" 2>&1
    assertEquals "promtool check metrics: $(cat "$TD/promtool.out")" 0 $?
    "$PY" - "$TD/stats.prom" >"$TD/stats.tsv" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
for fam in text_string_to_metric_families(open(sys.argv[1]).read()):
    for s in fam.samples:
        labels = ",".join("%s=%s" % kv for kv in sorted(s.labels.items()))
        print("%s{%s}\t%g" % (s.name, labels, s.value))
PY
    assertEquals "prometheus_client parses it" 0 $?
}

# metric NAME LABELS: the value of one sample in $TD/stats.tsv ("" if none);
# LABELS as "k=v,k=v" in any order.
metric() {
    local sorted
    sorted=$(tr ',' '\n' <<<"$2" | LC_ALL=C sort | paste -sd, -)
    awk -F'\t' -v k="$1{$sorted}" '$1 == k { print $2 }' "$TD/stats.tsv"
}

test_redis_counts_match() {
    setUp_stats
    PORT=$(free_port)
    redis_policy "$PORT" || { fail "no policy"; return 0; }
    redis_start "$PORT" || { fail "redis-server did not start"; return 0; }
    local i srv_rule=$POLICY:3 cli_rule=$POLICY:2 fpr
    fpr=$("$KEYTOOL" show "$KEY")
    for i in 1 2 3 4 5; do
        rcli PING >"$TD/ping.out" 2>>"$TD/ping.err"
        assertEquals "PING $i" PONG "$(cat "$TD/ping.out")"
    done
    # a wrong key and a plaintext client, refused by the server
    peer connect 127.0.0.1 "$PORT" --key "$KEY" --wrong-key --no-recv \
        >"$TD/wrong.out" 2>&1
    printf 'PING\r\nPING\r\n' >"$TD/pt"
    peer connect 127.0.0.1 "$PORT" --key "$KEY" --plaintext --send "$TD/pt" \
        --no-recv >"$TD/plain.out" 2>&1
    # one sealed connection held open: live 1
    bg hold sealed "$PY" -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"PING\r\n"); s.recv(100)
print("held", flush=True); time.sleep(60)' "$PORT"
    wait_line "$TD/hold.out" held 20 || fail "held connection did not start"
    # the server has counted both refusals once its log says so
    wait_line "$TD/srv.err" "reason=no_preface" 20
    stats_prom
    local R="dir=accept,program=redis-server,rule=$srv_rule"
    assertEquals "one redis-server process" 1 "$(metric sockseal_processes program=redis-server)"
    assertEquals "sealed: 5 redis-cli and the held one" 6 "$(metric sockseal_connections_sealed_total "$R")"
    assertEquals "ended ok: the 5 redis-cli" 5 "$(metric sockseal_connections_total "$R,reason=closed,result=ok")"
    assertEquals "failed: wrong key" 1 "$(metric sockseal_connections_total "$R,reason=wrong_key,result=failed")"
    assertEquals "refused: no preface" 1 "$(metric sockseal_connections_total "$R,reason=no_preface,result=refused")"
    assertEquals "live: the held one" 1 "$(metric sockseal_live_connections "$R")"
    assertEquals "no handshake in flight" 0 "$(metric sockseal_handshakes_in_flight program=redis-server)"
    # "*1\r\n$4\r\nPING\r\n" (14 bytes) in, "+PONG\r\n" (7) out, 5 times;
    # the held one's "PING\r\n" (6) and its "+PONG\r\n"
    assertEquals "bytes in" 76 "$(metric sockseal_bytes_total "$R,direction=in")"
    assertEquals "bytes out" 42 "$(metric sockseal_bytes_total "$R,direction=out")"
    assertEquals "handshake histogram count" 6 "$(metric sockseal_handshake_duration_seconds_count "$R")"
    assertEquals "handshake histogram +Inf bucket" 6 "$(metric sockseal_handshake_duration_seconds_bucket "$R,le=+Inf")"
    assertEquals "the key in force, by fingerprint" 1 \
        "$(metric sockseal_key_info "fingerprint=$fpr,kind=key,name=k,program=redis-server")"
    assertNotNull "its age" "$(metric sockseal_key_age_seconds "fingerprint=$fpr,kind=key,name=k,program=redis-server")"
    assertEquals "the policy in force" 1 \
        "$(grep -c "^sockseal_policy_loaded_timestamp_seconds{program=\"redis-server\",policy=\"$POLICY\"} [0-9]" "$TD/stats.prom")"
    # the held client's side, connect rule
    assertEquals "the client's sealed connection" 1 \
        "$(metric sockseal_connections_sealed_total "dir=connect,program=python3,rule=$cli_rule")"
    # redis-cli processes are gone: their own files with them
    assertEquals "files: redis-server and the held client" 2 "$(ls "$SOCKSEAL_STATS_DIR" | wc -l)"

    # the same numbers as JSON
    "$LAUNCHER" stats --json >"$TD/stats.json"
    assertEquals "stats --json exit status" 0 $?
    "$PY" - "$TD/stats.json" "$srv_rule" "$fpr" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
p = [x for x in d["programs"] if x["program"] == "redis-server"][0]
r = [x for x in p["rules"] if x["rule"] == sys.argv[2]][0]
ended = {(e["result"], e["reason"]): e["count"] for e in r["ended"]}
assert (r["dir"], r["sealed"], r["live"], r["bytes_in"], r["bytes_out"]) == ("accept", 6, 1, 76, 42), r
assert ended == {("ok", "closed"): 5, ("failed", "wrong_key"): 1, ("refused", "no_preface"): 1}, ended
assert r["handshake"]["count"] == 6, r
assert [k["fingerprint"] for k in p["keys"]] == [sys.argv[3]], p["keys"]
assert len(p["pids"]) == 1 and p["processes"] == 1, p
PY
    assertEquals "JSON agrees" 0 $?

    # a reload that changes the policy, and one that fails
    echo "connect 127.0.0.1:1 key=k" >>"$POLICY"
    rcli PING >"$TD/ping.out" 2>&1
    assertEquals "PING after the reload" PONG "$(cat "$TD/ping.out")"
    cp "$POLICY" "$TD/cli.policy"
    echo "conect broken" >>"$POLICY"
    POLICY=$TD/cli.policy rcli PING >"$TD/ping.out" 2>&1
    assertEquals "PING on the last good policy" PONG "$(cat "$TD/ping.out")"
    wait_line "$TD/srv.err" "reason=reload_failed" 20
    stats_prom
    assertEquals "one reload" 1 "$(metric sockseal_reloads_total program=redis-server)"
    assertEquals "one reload failure" 1 "$(metric sockseal_reload_failures_total program=redis-server)"
    assertEquals "sealed: two more" 8 "$(metric sockseal_connections_sealed_total "$R")"
    stop_bg hold
    stop_bg srv
}

# start_sleeper: a sealed python listener on $PORT that then sleeps
# (BGPID[sleeper]).  Listening while the policy seals accepted connections
# is what makes its statistics file, at listen().
start_sleeper() {
    bg sleeper sealed "$PY" -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
print("up", flush=True); time.sleep(60)' "$PORT"
    wait_line "$TD/sleeper.out" up 20
}

test_dead_processes_files_are_removed() {
    setUp_stats
    PORT=$(free_port)
    loopback_policy "$PORT" || { fail "no policy"; return 0; }
    start_sleeper || { fail "sleeper did not start"; return 0; }
    local pid
    pid=$(pgrep -P "${BGPID[sleeper]}" -f "time.sleep" | head -n 1)
    # (timeout runs env runs python: find the python under it)
    [ -n "$pid" ] || pid=$(pgrep -f "print\(\"up\"" -n)
    assertTrue "a listener has its file at once" "[ -e '$SOCKSEAL_STATS_DIR/$pid.stats' ]"
    "$LAUNCHER" stats --json >"$TD/a.json"
    assertEquals "a live process is counted" 1 \
        "$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(sum(p["processes"] for p in d["programs"] if p["program"]=="python3"))' "$TD/a.json")"
    stop_bg sleeper KILL
    kill -KILL "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    assertTrue "a killed process leaves its file" "[ -e '$SOCKSEAL_STATS_DIR/$pid.stats' ]"
    "$LAUNCHER" stats --keep --json >"$TD/keep.json"
    assertTrue "--keep leaves it" "[ -e '$SOCKSEAL_STATS_DIR/$pid.stats' ]"
    "$LAUNCHER" stats --json >"$TD/b.json"
    assertEquals "stats removes it" 1 "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["removed"])' "$TD/b.json")"
    assertFalse "and it is gone" "[ -e '$SOCKSEAL_STATS_DIR/$pid.stats' ]"
    assertEquals "and not counted" "[]" "$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["programs"])' "$TD/b.json")"
    # a process that never seals anything makes no file; one that did
    # removes its own when it exits
    sealed "$PY" -c 'import socket; socket.socket().close()'
    assertEquals "nothing to count: no file" 0 "$(ls "$SOCKSEAL_STATS_DIR" | wc -l)"
    sealed "$PY" -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen()
print(len([f for f in __import__("os").listdir(sys.argv[2])]))' "$PORT" "$SOCKSEAL_STATS_DIR" >"$TD/n.out"
    assertEquals "its file while it ran" 1 "$(cat "$TD/n.out")"
    assertEquals "an exited process leaves nothing" 0 "$(ls "$SOCKSEAL_STATS_DIR" | wc -l)"
    # -o writes the file whole
    "$LAUNCHER" stats -o "$TD/out.prom"
    assertEquals "-o: exit status" 0 $?
    assertFileContains "-o: the exposition" "$TD/out.prom" "^# TYPE sockseal_processes gauge"
    assertEquals "-o: no temporary left" 0 "$(ls "$TD" | grep -c 'out.prom.tmp')"
}

test_a_sandboxed_process_keeps_counting() {
    setUp_stats
    PORT=$(free_port)
    loopback_policy "$PORT" || { fail "no policy"; return 0; }
    bg srv sealed socat "TCP-LISTEN:$PORT,bind=127.0.0.1,reuseaddr,fork" EXEC:/bin/cat
    wait_listen "$PORT" srv || { fail "socat did not start"; return 0; }
    # no_new_privs is the shim's sign of a sandbox: it makes no syscall
    # the program would not (no new file); the mapping keeps counting
    bg cli sealed "$PY" -c '
import ctypes, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(38, 1, 0, 0, 0) == 0      # PR_SET_NO_NEW_PRIVS
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"x" * 1000)
got = b""
while len(got) < 1000:
    got += s.recv(4096)
print("echoed", len(got), flush=True); time.sleep(60)' "$PORT"
    wait_line "$TD/cli.out" "echoed 1000" 20 || { fail "sandboxed client: $(cat "$TD/cli.err")"; return 0; }
    stats_prom
    local R="dir=connect,program=python3,rule=$POLICY:2"
    assertEquals "the sandboxed client's sealed connection" 1 "$(metric sockseal_connections_sealed_total "$R")"
    assertEquals "its bytes out" 1000 "$(metric sockseal_bytes_total "$R,direction=out")"
    assertEquals "its bytes in" 1000 "$(metric sockseal_bytes_total "$R,direction=in")"
    # socat's forked child has its own file and counts the connection
    assertEquals "socat's child: sealed" 1 \
        "$(metric sockseal_connections_sealed_total "dir=accept,program=socat,rule=$POLICY:3")"
    stop_bg cli
    stop_bg srv
}

# Counters are taken only from root's files or from the process's own
# user's: in the shared directory nobody passes its counts off as a
# process of root's.
test_another_users_file_is_refused() {
    setUp_stats
    PORT=$(free_port)
    loopback_policy "$PORT" || { fail "no policy"; return 0; }
    start_sleeper || { fail "sleeper did not start"; return 0; }
    local f
    f=$(ls "$SOCKSEAL_STATS_DIR"/*.stats | head -n 1)
    # the same file, claiming this shell (root's, alive) as its writer,
    # with a program name of its own, owned by nobody
    "$PY" - "$f" "$SOCKSEAL_STATS_DIR/$$.stats" "$$" <<'PY'
import os, struct, sys
b = bytearray(open(sys.argv[1], "rb").read())
pid = int(sys.argv[3])
stat = open("/proc/%d/stat" % pid).read()
ticks = int(stat[stat.rindex(")") + 2:].split()[19])
st = os.stat("/proc/%d/exe" % pid)
struct.pack_into("<i", b, 16, pid)
struct.pack_into("<QQQ", b, 24, ticks, st.st_dev, st.st_ino)
b[56:120] = b"impostor".ljust(64, b"\0")
open(sys.argv[2], "wb").write(b)
PY
    chown nobody "$SOCKSEAL_STATS_DIR/$$.stats"
    "$LAUNCHER" stats --keep --json >"$TD/s.json"
    assertEquals "the impostor is not counted" "['python3']" \
        "$("$PY" -c 'import json,sys; print([p["program"] for p in json.load(open(sys.argv[1]))["programs"]])' "$TD/s.json")"
    chown root "$SOCKSEAL_STATS_DIR/$$.stats"
    "$LAUNCHER" stats --keep --json >"$TD/r.json"
    assertEquals "control: root's file is" "['impostor', 'python3']" \
        "$("$PY" -c 'import json,sys; print(sorted(p["program"] for p in json.load(open(sys.argv[1]))["programs"]))' "$TD/r.json")"
    rm -f "$SOCKSEAL_STATS_DIR/$$.stats"
    stop_bg sleeper
}

# A file size limit below the file's size: no statistics file (making one
# past RLIMIT_FSIZE may raise SIGXFSZ), and the program runs as it would.
test_small_file_size_limit() {
    if [ "$SAN" = tsan ]; then
        # the ThreadSanitizer runtime itself faults (SIGBUS in its shadow
        # memory) under a small RLIMIT_FSIZE, with or without statistics
        startSkipping
        echo "skipped under tsan: its runtime does not run under ulimit -f"
        return 0
    fi
    setUp_stats
    PORT=$(free_port)
    loopback_policy "$PORT" || { fail "no policy"; return 0; }
    # socat keeps SIGXFSZ's default (python ignores it); it listens
    # until the timeout stops it
    (ulimit -f 8; timeout -s TERM 2 env LD_PRELOAD="$PRELOAD" SOCKSEAL_POLICY="$POLICY" \
        "${SAN_ENV[@]}" socat "TCP-LISTEN:$PORT,bind=127.0.0.1" STDOUT) >"$TD/f.out" 2>"$TD/f.err"
    local rc=$?
    assertNotEquals "socat was not killed by SIGXFSZ: $(cat "$TD/f.err")" 153 "$rc"
    assertFileNotContains "and said nothing" "$TD/f.err" "."
    assertEquals "no file" 0 "$(ls "$SOCKSEAL_STATS_DIR" | wc -l)"
}

test_usage() {
    "$LAUNCHER" stats --help >"$TD/h.out" 2>"$TD/h.err"
    assertEquals "--help: exit 0" 0 $?
    assertFileContains "--help: usage on stdout" "$TD/h.out" "^usage: sockseal stats"
    "$LAUNCHER" stats --bogus >"$TD/b.out" 2>"$TD/b.err"
    assertEquals "unknown option: exit 2" 2 $?
    assertFileContains "usage on stderr" "$TD/b.err" "^usage: sockseal stats"
    "$LAUNCHER" stats --dir "$TD/none" >"$TD/n.out" 2>&1
    assertEquals "no directory yet: nothing ran, not an error" 0 $?
    promtool check metrics <"$TD/n.out" >/dev/null 2>&1
    assertEquals "and still valid" 0 $?
}

. shunit2
