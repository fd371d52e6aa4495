#!/bin/bash
# Diagnostics: `sockseal doctor` verdicts on real binaries (dynamic, static,
# setuid, setgid, capabilities, scripts, Go, musl, io_uring), `sockseal
# explain` (connect, accept, plain, no match, IPv6, IPv4-mapped), and the
# per-connection log line: SOCKSEAL_LOG_FILE with SOCKSEAL_LOG_FORMAT=json,
# one conn_end per connection per side with the right byte counts, suite,
# rule and result (ok, failed, refused, timeout, plaintext fallback), also
# after the program closed every fd and from socat's forked children.
. "$(dirname "$0")/lib.sh"

# doctor_is WHAT STATUS REGEX BINARY: run doctor on BINARY; assert the exit
# status and that the first line matches REGEX.
doctor_is() {
    local rc
    "$LAUNCHER" doctor "$4" >"$TD/doctor.out" 2>"$TD/doctor.err"
    rc=$?
    assertEquals "doctor $1: exit status" "$2" "$rc"
    head -n 1 "$TD/doctor.out" >"$TD/doctor.first"
    assertFileContains "doctor $1: verdict line" "$TD/doctor.first" "$3"
}

# cbin NAME [CC ARGS...] < SOURCE: compile a C program into $TD/NAME.
cbin() {
    local name=$1
    shift
    cat >"$TD/$name.c"
    gcc -O0 -o "$TD/$name" "$TD/$name.c" "$@" 2>"$TD/$name.cc.err"
}

test_doctor_dynamic_programs() {
    doctor_is socat 0 '^/usr/bin/socat: can be sealed: dynamically linked against glibc' /usr/bin/socat
    assertFileContains "socat imports connect" "$TD/doctor.out" '^  imports: sockets: socket connect accept'
    assertFileContains "socat needs libc" "$TD/doctor.out" '^  needs: .*libc\.so\.6'
    doctor_is python3 0 '^/usr/bin/python3: can be sealed: ' /usr/bin/python3
    assertFileContains "python3: syscall() noted" "$TD/doctor.out" '^  note: it calls syscall\(\)'
    # found through PATH, as execvp would
    PATH=/usr/bin:/bin doctor_is redis-server 0 '^/usr/bin/redis-server: can be sealed: ' redis-server
    assertFileContains "redis imports epoll" "$TD/doctor.out" 'readiness: .*epoll_wait'
    "$LAUNCHER" doctor no-such-program-here >"$TD/doctor.out" 2>"$TD/doctor.err"
    assertEquals "doctor on a missing program: exit status" 2 $?
    assertFileContains "missing: says so" "$TD/doctor.err" 'no-such-program-here: not found on PATH'
    "$LAUNCHER" doctor >/dev/null 2>&1
    assertEquals "doctor without BINARY: usage" 2 $?
    printf 'just data\n' >"$TD/data"
    doctor_is "a data file" 1 ': cannot be sealed: neither an ELF program nor a script' "$TD/data"
}

test_doctor_cannot() {
    local src='int main(void) { return 0; }'
    echo "$src" | cbin static -static || { fail "gcc -static failed: $(cat "$TD/static.cc.err")"; return 0; }
    doctor_is static 1 "^$TD/static: cannot be sealed: statically linked \(e\.g\. Go or musl static\); use an off-the-shelf Noise peer, see PROTOCOL\.md$" "$TD/static"
    echo "$src" | cbin spie -static-pie || { fail "gcc -static-pie failed"; return 0; }
    doctor_is static-pie 1 ': cannot be sealed: statically linked' "$TD/spie"

    cp /usr/bin/true "$TD/suid" && chmod u+s "$TD/suid"
    doctor_is setuid 1 "^$TD/suid: cannot be sealed: it is setuid: the loader ignores LD_PRELOAD" "$TD/suid"
    if [ -u /usr/bin/passwd ]; then
        doctor_is passwd 1 '^/usr/bin/passwd: cannot be sealed: it is setuid' /usr/bin/passwd
    fi
    cp /usr/bin/true "$TD/sgid" && chmod g+s "$TD/sgid"
    doctor_is setgid 1 ': cannot be sealed: it is setgid' "$TD/sgid"
    if command -v setcap >/dev/null && cp /usr/bin/true "$TD/caps" &&
        setcap cap_net_bind_service+ep "$TD/caps" 2>/dev/null; then
        doctor_is capabilities 1 ': cannot be sealed: it has file capabilities' "$TD/caps"
    fi

    # no Go toolchain here: a C program carrying Go's build-info section
    cbin go <<'EOF' || { fail "gcc failed"; return 0; }
__attribute__((section(".go.buildinfo"), used)) static const char bi[32] = "\xff Go buildinf:";
int main(void) { return 0; }
EOF
    doctor_is go 1 ': cannot be sealed: a Go program: Go makes its network system calls itself' "$TD/go"
    # imports io_uring_* (weak, so it links without liburing)
    cbin uring <<'EOF' || { fail "gcc failed"; return 0; }
extern int io_uring_queue_init(unsigned, void *, unsigned) __attribute__((weak));
int main(void) { return io_uring_queue_init ? io_uring_queue_init(8, 0, 0) : 0; }
EOF
    doctor_is io_uring 1 ': cannot be sealed: it uses io_uring' "$TD/uring"
    echo "$src" | cbin musl -Wl,--dynamic-linker=/lib/ld-musl-x86_64.so.1 || { fail "gcc failed"; return 0; }
    doctor_is musl 1 ': cannot be sealed: not linked against glibc \(its loader is /lib/ld-musl-x86_64\.so\.1, musl\)' "$TD/musl"
}

test_doctor_scripts() {
    # a script is judged by the program it ends in (more in 67-doctor)
    printf '#!/bin/sh\necho hi\n' >"$TD/s.sh"
    chmod +x "$TD/s.sh"
    doctor_is "sh script" 0 "^$TD/s.sh: (can be sealed|nothing to seal): " "$TD/s.sh"
    assertFileContains "sh script: followed to /bin/sh" "$TD/doctor.out" \
        "^  follows: $TD/s.sh is a #! script run by /bin/sh\$"
    printf '#!/usr/bin/env -S python3 -u\nprint(1)\n' >"$TD/p.py"
    chmod +x "$TD/p.py"
    PATH=/usr/bin:/bin doctor_is "env script" 0 "^$TD/p.py: can be sealed: " "$TD/p.py"
    assertFileContains "env script: python3 on PATH" "$TD/doctor.out" \
        "^  follows: $TD/p.py is a #! script run by /usr/bin/python3 \(/usr/bin/env finds it on PATH\)\$"
    echo 'int main(void) { return 0; }' | cbin static -static || { fail "gcc -static failed"; return 0; }
    printf '#!%s\n' "$TD/static" >"$TD/st.sh"
    doctor_is "script for a static interpreter" 1 "^$TD/st.sh: cannot be sealed: statically linked" "$TD/st.sh"
    assertFileContains "static interpreter: followed" "$TD/doctor.out" \
        "^  follows: $TD/st.sh is a #! script run by $TD/static\$"
}

explain_policy() {
    mkkey k >/dev/null && mkkey k2 >/dev/null || return 1
    write_policy <<EOF
key k $TD/k.key
key k2 $TD/k2.key
connect 127.0.0.0/8:22 plain
connect 10.0.0.0/8:5432 key=k,k2
connect [fd00::]/8:443 key=k cipher=aesgcm timeout=2000
accept *:5432 key=k,k2
accept [::1]:8000-8999 key=k2 mode=permissive
EOF
}

# explain_is WHAT STATUS ARGS...: run explain; assert the exit status.
explain_is() {
    local what=$1 want=$2 rc
    shift 2
    "$LAUNCHER" explain "$@" >"$TD/explain.out" 2>"$TD/explain.err"
    rc=$?
    assertEquals "explain $what: exit status" "$want" "$rc"
}

test_explain() {
    explain_policy || { fail "no keys"; return 0; }
    explain_is "connect IPv4" 0 -f "$POLICY" connect 10.1.2.3:5432
    assertFileContains "rule line" "$TD/explain.out" "^$POLICY:4: connect 10\.0\.0\.0/8:5432 key=k,k2\$"
    assertFileContains "why" "$TD/explain.out" '^  matches connect 10\.1\.2\.3:5432: connect rule; 10\.1\.2\.3 is in 10\.0\.0\.0/8; port 5432$'
    assertFileContains "skipped count" "$TD/explain.out" '^  first match wins: 1 earlier rule did not match'
    assertFileContains "key used" "$TD/explain.out" "^  will do: seal it: connect\(\) runs the handshake with key k \($TD/k\.key, SHA256:"
    assertFileContains "cipher" "$TD/explain.out" '^  cipher: proposes chachapoly$'
    assertFileContains "timeout" "$TD/explain.out" '^  handshake timeout: 10000 ms$'

    explain_is "IPv4-mapped, -v" 0 -v -f "$POLICY" connect '[::ffff:10.1.2.3]:5432'
    assertFileContains "mapped: said" "$TD/explain.out" 'IPv4-mapped IPv6 address: IPv4 rules see it as 10\.1\.2\.3'
    assertFileContains "mapped: the IPv4 rule" "$TD/explain.out" "^$POLICY:4: connect 10\.0\.0\.0/8:5432"
    assertFileContains "-v: the skipped rule and why" "$TD/explain.out" "^skipped $POLICY:3: connect 127\.0\.0\.0/8:22 plain: 10\.1\.2\.3 is not in 127\.0\.0\.0/8\$"

    explain_is "IPv6" 0 -v -f "$POLICY" connect '[fd00::5]:443'
    assertFileContains "IPv6 rule" "$TD/explain.out" "^$POLICY:5: connect \[fd00::\]/8:443 key=k cipher=aesgcm timeout=2000\$"
    assertFileContains "IPv6: IPv4 rules skipped" "$TD/explain.out" "^skipped $POLICY:4: .*: an IPv4 rule, fd00::5 is IPv6\$"
    assertFileContains "IPv6: aesgcm" "$TD/explain.out" '^  cipher: proposes aesgcm'
    assertFileContains "IPv6: timeout" "$TD/explain.out" '^  handshake timeout: 2000 ms$'

    explain_is "plain" 0 -f "$POLICY" connect 127.0.0.1:22
    assertFileContains "plain rule" "$TD/explain.out" "^$POLICY:3: connect 127\.0\.0\.0/8:22 plain\$"
    assertFileContains "plain: left alone" "$TD/explain.out" '^  will do: nothing: an explicit `plain` exemption'

    SOCKSEAL_POLICY=$POLICY explain_is "accept, policy from the environment" 0 accept 0.0.0.0:5432
    assertFileContains "accept rule" "$TD/explain.out" "^$POLICY:6: accept \*:5432 key=k,k2\$"
    assertFileContains "accept: any address" "$TD/explain.out" 'accept rule; any address; port 5432$'
    assertFileContains "accept: both keys" "$TD/explain.out" 'one of the keys k \(.*\), k2 \('
    assertFileContains "accept: strict" "$TD/explain.out" '^  mode: strict: a client without the sockseal preface is refused$'

    explain_is "accept IPv6 range" 0 -f "$POLICY" accept '[::1]:8443'
    assertFileContains "range rule" "$TD/explain.out" "^$POLICY:7: accept \[::1\]:8000-8999"
    assertFileContains "range: why" "$TD/explain.out" '::1 is \[::1\]; port 8443 is in 8000-8999$'
    assertFileContains "permissive" "$TD/explain.out" '^  mode: permissive'

    explain_is "no match" 1 -f "$POLICY" connect 8.8.8.8:53
    assertFileContains "no match: left alone" "$TD/explain.out" "^no rule matches connect 8\.8\.8\.8:53 in $POLICY: the connection is left alone"
    explain_is "port outside" 1 -v -f "$POLICY" connect 10.1.2.3:5433
    assertFileContains "port: why" "$TD/explain.out" ': port 5433 is not in 5432$'
    explain_is "a host name" 2 -f "$POLICY" connect localhost:80
    explain_is "a bad direction" 2 -f "$POLICY" listen 1.2.3.4:80
    explain_is "a missing policy" 2 -f "$TD/none" connect 1.2.3.4:80
}

# json_check FILE ARGS...: tests/integration's checks on a JSON log.
json_check() {
    "$PY" - "$@" <<'PY'
import json, re, sys
path, want = sys.argv[1], sys.argv[2:]
ends, fails, bad = [], [], 0
for n, line in enumerate(open(path, encoding="utf-8"), 1):
    try:
        o = json.loads(line)
    except ValueError as e:
        print("line %d is not JSON: %s: %r" % (n, e, line)); bad += 1; continue
    for k in ("ts", "pid", "level", "fn", "msg"):
        if k not in o:
            print("line %d lacks %s" % (n, k)); bad += 1
    if not o.get("ts", "").endswith("Z") or "T" not in o.get("ts", ""):
        print("line %d: ts %r" % (n, o.get("ts"))); bad += 1
    if o.get("event") == "conn_end":
        ends.append(o)
    if o.get("event") == "conn_fail":
        fails.append(o)
    if o.get("level") == "warn" and not o.get("reason"):
        print("line %d: a warning without a reason code: %s" % (n, o)); bad += 1
# want: one "dir,rule,suite,result,bytes_in,bytes_out,reason-code" per connection, in order
if len(ends) != len(want):
    print("%d conn_end lines, want %d: %s" % (len(ends), len(want), ends)); bad += 1
for o, w in zip(ends, want):
    d, rule, suite, result, bi, bo, why = w.split(",", 6)
    got = (o.get("dir"), o.get("rule"), o.get("suite"), o.get("result"),
           str(o.get("bytes_in")), str(o.get("bytes_out")))
    if got != (d, rule, suite, result, bi, bo) or o.get("reason") != why or not o.get("detail") \
            or not o.get("peer", "").startswith("127.0.0.1:") or not isinstance(o.get("ms"), int):
        print("conn_end %s, want %s" % (o, w)); bad += 1
    # the key it used (an ok one has it) and the program that ended it
    if (result == "ok" and not re.match(r"key k \(SHA256:[A-Za-z0-9+/]+\)$", o.get("keys", ""))) \
            or (result != "ok" and o.get("keys") != "") or not o.get("program"):
        print("conn_end keys/program %s" % o); bad += 1
    # a failure also has its warning line, with the same fields and code
    if result != "ok":
        f = [x for x in fails if x.get("peer") == o.get("peer")]
        if len(f) != 1 or (f[0].get("dir"), f[0].get("rule"), f[0].get("result"),
                           f[0].get("reason")) != (d, rule, result, why) \
                or not f[0].get("detail") or not f[0].get("errno") or not f[0].get("program") \
                or f[0].get("msg", "").find("[reason=%s]" % why) < 0:
            print("conn_fail for %s: %s" % (o.get("peer"), f)); bad += 1
if len(fails) != len([w for w in want if w.split(",")[3] != "ok"]):
    print("%d conn_fail lines: %s" % (len(fails), fails)); bad += 1
sys.exit(1 if bad else 0)
PY
}

test_start_errors_follow_the_log_settings() {
    local port
    port=$(free_port)
    loopback_policy "$port" || { fail "no key"; return 0; }
    # unknown log settings stop the program, as a bad policy does
    for setting in SOCKSEAL_LOG=INFO SOCKSEAL_LOG=verbose SOCKSEAL_LOG_FORMAT=JSON; do
        timeout -k 5 "$TMO" env "$setting" LD_PRELOAD="$PRELOAD" SOCKSEAL_POLICY="$POLICY" "${SAN_ENV[@]}" \
            "$PY" -c 'print("program ran")' >"$TD/s.out" 2>"$TD/s.err"
        assertEquals "$setting: exit status" 1 $?
        assertFileNotContains "$setting: the program did not run" "$TD/s.out" "program ran"
        assertFileContains "$setting: says which and what is valid" "$TD/s.err" \
            "error: ${setting}: unknown value \("
    done
    SOCKSEAL_LOG= SOCKSEAL_LOG_FORMAT= sealed "$PY" -c 'print("program ran")' >"$TD/s.out" 2>&1
    assertFileContains "empty settings are the defaults" "$TD/s.out" "program ran"
    # a fatal start-up error is a JSON line in the log file, and text on stderr
    echo "conect 127.0.0.1:1 key=k" >>"$POLICY"
    # (set for the program itself: env(1) run under the shim would die first)
    SOCKSEAL_LOG_FORMAT=json SOCKSEAL_LOG_FILE="$TD/start.log" \
        sealed "$PY" -c 'print("program ran")' >"$TD/j.out" 2>"$TD/j.err"
    assertEquals "bad policy: exit status" 1 $?
    assertEquals "one line in the log file" 1 "$(wc -l <"$TD/start.log")"
    "$PY" - "$TD/start.log" "$POLICY:4" <<'PYCHECK'
import json, sys
rec = json.loads(open(sys.argv[1]).readline())
assert rec["level"] == "error", rec
assert sys.argv[2] in rec["msg"], rec
assert "ts" in rec, rec
PYCHECK
    assertEquals "the log file's line is JSON naming FILE:LINE" 0 $?
    assertFileContains "and stderr says it as text" "$TD/j.err" "sockseal\[[0-9]*\]: error: $POLICY:4"
}

test_json_log_file_one_line_per_connection() {
    local port
    port=$(free_port)
    loopback_policy "$port" "timeout=3000" || { fail "no key"; return 0; }
    mkdata "$TD/up1" 300001
    mkdata "$TD/up2" 70000
    mkdata "$TD/down" 123457
    bg srv sealed env SOCKSEAL_LOG=info SOCKSEAL_LOG_FORMAT=json SOCKSEAL_LOG_FILE="$TD/srv.log" \
        "$PY" "$PROGS/sockprog.py" server 127.0.0.1 "$port" --count 5 --mode sinksource --reply "$TD/down"
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    assertEquals "log file mode" 600 "$(stat -c %a "$TD/srv.log")"

    # 1: sockprog, sealed, logging to its own file
    sealed env SOCKSEAL_LOG=info SOCKSEAL_LOG_FORMAT=json SOCKSEAL_LOG_FILE="$TD/cli.log" \
        "$PY" "$PROGS/sockprog.py" client 127.0.0.1 "$port" --send "$TD/up1" \
        --recv-out "$TD/got1" --mode sequential >"$TD/cli1.out" 2>&1
    assertEquals "client 1 exit status" 0 $?
    assertSameFile "client 1 got the reply" "$TD/down" "$TD/got1"
    # 2: a program that closes every fd it did not open (the log's too)
    # before connecting, appending to the same log file
    sealed env SOCKSEAL_LOG=info SOCKSEAL_LOG_FORMAT=json SOCKSEAL_LOG_FILE="$TD/cli.log" \
        "$PY" -c '
import os, socket, sys
os.closerange(3, 65536)
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(open(sys.argv[2], "rb").read())
s.shutdown(socket.SHUT_WR)
got = b"".join(iter(lambda: s.recv(65536), b""))
open(sys.argv[3], "wb").write(got)
s.close()' "$port" "$TD/up2" "$TD/got2" >"$TD/cli2.out" 2>&1
    assertEquals "client 2 exit status" 0 $?
    assertSameFile "client 2 got the reply" "$TD/down" "$TD/got2"
    # 3: wrong key; 4: plaintext into a strict rule; 5: says nothing
    peer connect 127.0.0.1 "$port" --key "$TD/k.key" --wrong-key >"$TD/p3.out" 2>&1
    mkdata "$TD/plain" 1000
    peer connect 127.0.0.1 "$port" --key "$TD/k.key" --plaintext --send "$TD/plain" >"$TD/p4.out" 2>&1
    peer connect 127.0.0.1 "$port" --key "$TD/k.key" --stall 20 >"$TD/p5.out" 2>&1
    wait_bg srv
    assertEquals "server exit status" 0 $?

    json_check "$TD/cli.log" \
        "connect,$POLICY:2,chachapoly,ok,123457,300001,closed" \
        "connect,$POLICY:2,chachapoly,ok,123457,70000,closed" >"$TD/cli.check"
    assertEquals "client log: $(cat "$TD/cli.check")" 0 $?
    json_check "$TD/srv.log" \
        "accept,$POLICY:3,chachapoly,ok,300001,123457,closed" \
        "accept,$POLICY:3,chachapoly,ok,70000,123457,closed" \
        "accept,$POLICY:3,chachapoly,failed,0,0,wrong_key" \
        "accept,$POLICY:3,none,refused,0,0,no_preface" \
        "accept,$POLICY:3,none,timeout,0,0,handshake_timeout" >"$TD/srv.check"
    assertEquals "server log: $(cat "$TD/srv.check")" 0 $?
    assertEquals "nothing on the server's stderr" 0 "$(wc -c <"$TD/srv.err")"
}

test_text_lines_permissive_and_forked_children() {
    local port i n
    port=$(free_port)
    loopback_policy "$port" "mode=permissive" || { fail "no key"; return 0; }
    # socat forks a child per connection: the child ends each connection.
    # EXEC forks again and execs cat: a grandchild that exec'ed (or closed
    # its copy) before its parent registered it must not count as holding
    # the connection, or nobody would end it (and log it).
    bg srv sealed env SOCKSEAL_LOG=info SOCKSEAL_LOG_FILE="$TD/srv.log" \
        socat -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" EXEC:cat
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    for i in 1 2; do
        mkdata "$TD/in$i" $((i * 100000 + 7))
        sealed env SOCKSEAL_LOG=info socat -t 30 "TCP:127.0.0.1:$port" STDIO \
            <"$TD/in$i" >"$TD/out$i" 2>"$TD/cli$i.err"
        assertEquals "client $i exit status" 0 $?
        assertSameFile "client $i echo" "$TD/in$i" "$TD/out$i"
        assertFileContains "client $i: its end line on stderr" "$TD/cli$i.err" \
            "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z sockseal\[[0-9]+\]: info: session_log_end: closed connection to 127\.0\.0\.1:$port \(rule $POLICY:2, chachapoly\): $((i * 100000 + 7)) bytes in, $((i * 100000 + 7)) bytes out, [0-9]+ ms, ok \("
    done
    # a plaintext client on the permissive rule
    mkdata "$TD/plain" 5000
    peer connect 127.0.0.1 "$port" --key "$TD/k.key" --plaintext --send "$TD/plain" \
        --recv-out "$TD/plain.got" >"$TD/p.out" 2>&1
    assertSameFile "plaintext client echoed" "$TD/plain" "$TD/plain.got"
    wait_line "$TD/srv.log" "plain\): 5000 bytes in" 10
    stop_bg srv
    n=$(grep -c 'session_log_end: closed connection from' "$TD/srv.log")
    assertEquals "one end line per connection on the server" 3 "$n"
    for i in 1 2; do
        assertFileContains "server: connection $i" "$TD/srv.log" \
            "closed connection from 127\.0\.0\.1:[0-9]+ \(rule $POLICY:3, chachapoly\): $((i * 100000 + 7)) bytes in, $((i * 100000 + 7)) bytes out, [0-9]+ ms, ok \((closed|process exited)\); key k \(SHA256:[A-Za-z0-9+/]+\), program socat\$"
    done
    assertFileContains "server: plaintext fallback" "$TD/srv.log" \
        "\(rule $POLICY:3, plain\): 5000 bytes in, 5000 bytes out, [0-9]+ ms, ok \((closed|process exited); plaintext client, permissive rule\); program socat\$"
    assertFileNotContains "server: nothing on stderr" "$TD/srv.err" 'sockseal'
}

. shunit2
