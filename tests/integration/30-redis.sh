#!/bin/bash
# redis-server (one epoll thread, level-triggered, accept4 non-blocking,
# read/write/writev) with redis-cli (hiredis: non-blocking connect, connect()
# again, then blocking recv/send) and redis-benchmark (epoll, 50 clients,
# ADD/DEL/MOD churn, pipelining), all sealed.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/redis_lib.sh"

setup_redis() {
    PORT=$(free_port)
    redis_policy "$PORT" || return 1
    redis_start "$PORT"
}

test_set_get_1_4MB_binary_value() {
    setup_redis || { fail "redis-server did not start"; return 0; }
    mkdata "$TD/val" 1400000
    rcli -x SET big <"$TD/val" >"$TD/set.out" 2>"$TD/set.err"
    assertEquals "redis-cli -x SET exit status" 0 $?
    assertEquals "SET reply" "OK" "$(cat "$TD/set.out")"
    rcli STRLEN big >"$TD/strlen.out" 2>"$TD/strlen.err"
    assertEquals "STRLEN: the server stored every byte" 1400000 "$(cat "$TD/strlen.out")"
    # --raw prints the bulk string as it is, then one newline
    rcli --raw GET big >"$TD/get.raw" 2>"$TD/get.err"
    assertEquals "redis-cli GET exit status" 0 $?
    assertEquals "GET output is the value and a newline" 1400001 "$(fsize "$TD/get.raw")"
    assertEquals "GET output ends with the newline" 0a "$(tail -c 1 "$TD/get.raw" | od -An -tx1 | tr -d ' \n')"
    head -c -1 "$TD/get.raw" >"$TD/got"
    assertSameFile "1.4 MB binary value round trip" "$TD/val" "$TD/got"
    assertTrue "redis-server still running" "running srv"
}

# bench_check FILE TESTS...: every test reported its requests per second.
bench_check() {
    local f=$1 t
    shift
    tr '\r' '\n' <"$f" >"$f.lines"
    for t in "$@"; do
        assertFileContains "redis-benchmark reported $t" "$f.lines" \
            "^$t: [0-9]+(\\.[0-9]+)? requests per second"
    done
    assertFileNotContains "redis-benchmark reported no error" "$f.lines" "[Ee]rror"
}

test_benchmark_five_commands() {
    setup_redis || { fail "redis-server did not start"; return 0; }
    sealed redis-benchmark -h 127.0.0.1 -p "$PORT" -q -n 2000 -t set,get,incr,lpush,lpop \
        >"$TD/bench.out" 2>"$TD/bench.err"
    assertEquals "redis-benchmark exit status" 0 $?
    bench_check "$TD/bench.out" SET GET INCR LPUSH LPOP
    # without -r every INCR hits the one literal key: exactly 2000 of them
    rcli GET counter:__rand_int__ >"$TD/counter.out" 2>"$TD/counter.err"
    assertEquals "INCR ran exactly 2000 times" 2000 "$(cat "$TD/counter.out")"
    # 2000 LPUSH then 2000 LPOP on one list
    rcli LLEN mylist >"$TD/llen.out" 2>"$TD/llen.err"
    assertEquals "LPUSH and LPOP balanced" 0 "$(cat "$TD/llen.out")"
    rcli INFO stats >"$TD/info.out" 2>"$TD/info.err"
    assertTrue "server counted at least 10000 commands" \
        "[ \"$(info_field "$TD/info.out" total_commands_processed)\" -ge 10000 ]"
    assertTrue "server counted at least 5 x 50 benchmark connections" \
        "[ \"$(info_field "$TD/info.out" total_connections_received)\" -ge 250 ]"
    assertTrue "redis-server still running" "running srv"
}

test_benchmark_pipelined() {
    setup_redis || { fail "redis-server did not start"; return 0; }
    sealed redis-benchmark -h 127.0.0.1 -p "$PORT" -q -P 16 -n 5000 -t set,get \
        >"$TD/bench.out" 2>"$TD/bench.err"
    assertEquals "redis-benchmark -P 16 exit status" 0 $?
    bench_check "$TD/bench.out" SET GET
    rcli INFO stats >"$TD/info.out" 2>"$TD/info.err"
    assertTrue "server counted at least 10000 commands" \
        "[ \"$(info_field "$TD/info.out" total_commands_processed)\" -ge 10000 ]"
    assertTrue "redis-server still running" "running srv"
}

# 1000 commands per write: one sealed record carries more than redis reads
# at once (16 KiB), so the rest waits as decrypted plaintext inside the shim
# while the kernel socket is empty; epoll_wait must still report it readable.
test_benchmark_deep_pipeline() {
    setup_redis || { fail "redis-server did not start"; return 0; }
    TMO=30 sealed redis-benchmark -h 127.0.0.1 -p "$PORT" -q -c 4 -P 1000 -n 20000 -t set,get \
        >"$TD/bench.out" 2>"$TD/bench.err"
    assertEquals "redis-benchmark -P 1000 exit status" 0 $?
    bench_check "$TD/bench.out" SET GET
    rcli INFO stats >"$TD/info.out" 2>"$TD/info.err"
    assertTrue "server counted at least 40000 commands" \
        "[ \"$(info_field "$TD/info.out" total_commands_processed)\" -ge 40000 ]"
    assertTrue "redis-server still running" "running srv"
}

test_connection_accounting() {
    local i n=0 ok=0
    setup_redis || { fail "redis-server did not start"; return 0; }
    for i in 1 2 3 4 5 6 7 8 9 10; do
        rcli PING >"$TD/ping$i.out" 2>"$TD/ping$i.err"
        assertEquals "PING $i exit status" 0 $?
        assertEquals "PING $i reply" PONG "$(cat "$TD/ping$i.out")"
        n=$((n + 1))
    done
    # every earlier client's end of stream reaches redis as EOF: at last only
    # the INFO client itself is connected (polled: redis frees them lazily)
    for i in $(seq 1 50); do
        rcli INFO >"$TD/info.out" 2>"$TD/info.err"
        n=$((n + 1))
        if [ "$(info_field "$TD/info.out" connected_clients)" = 1 ]; then
            ok=1
            break
        fi
        sleep 0.1
    done
    assertEquals "connected_clients went back to 1 (the INFO client)" 1 "$ok"
    assertEquals "total_connections_received counts every redis-cli run" "$n" \
        "$(info_field "$TD/info.out" total_connections_received)"
    assertEquals "rejected_connections" 0 "$(info_field "$TD/info.out" rejected_connections)"
    assertTrue "redis-server still running" "running srv"
}

test_capture_marker_never_on_wire() {
    local m m2
    setup_redis || { fail "redis-server did not start"; return 0; }
    m=$(newmarker)
    m2=$(newmarker)
    mkmarked "$TD/val" 300000 "$m2"
    cap_start "$PORT" || { fail "no capture"; return 0; }
    rcli SET mk "$m" >"$TD/set.out" 2>"$TD/set.err"
    assertEquals "SET marker reply" OK "$(cat "$TD/set.out")"
    rcli GET mk >"$TD/get.out" 2>"$TD/get.err"
    assertEquals "GET marker" "$m" "$(cat "$TD/get.out")"
    rcli -x SET mk2 <"$TD/val" >"$TD/set2.out" 2>"$TD/set2.err"
    assertEquals "SET marked 300 kB value reply" OK "$(cat "$TD/set2.out")"
    rcli --raw GET mk2 >"$TD/get2.raw" 2>"$TD/get2.err"
    head -c -1 "$TD/get2.raw" >"$TD/got2"
    assertSameFile "marked value round trip" "$TD/val" "$TD/got2"
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$m" --marker "$m2" --min-conns 4 --min-bytes 600000
    assertEquals "capture: preface on every connection, no marker" 0 $?
}


# A server that sizes itself from its descriptor limit serves that many
# sealed clients: each sealed connection costs the shim a descriptor of its
# own, which lives above the program's RLIMIT_NOFILE (docs/standin.md).
# redis with a soft limit of 256 and maxclients 200 needs 232 descriptors of its
# own; with the shim's in its range it would run out near 120 clients.
test_maxclients_from_the_descriptor_limit() {
    local n=200
    PORT=$(free_port)
    redis_policy "$PORT" || { fail "no key"; return 0; }
    redis_conf "$PORT"
    echo "maxclients $n" >>"$TD/redis.conf"
    bg srv sealed bash -c 'ulimit -Sn 256 && exec redis-server "$1"' _ "$TD/redis.conf"
    wait_listen "$PORT" srv || { fail "redis did not start"; return 0; }
    cat >"$TD/many.py" <<'PY'
import resource, socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
conns = []
for i in range(n):
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"PING\r\n")
    r = c.recv(64)
    if r != b"+PONG\r\n":
        print("client", i, "got", r, flush=True)
        sys.exit(1)
    conns.append(c)
c = conns[0]
c.sendall(b"INFO clients\r\n")
info = b""
while b"connected_clients" not in info or not info.endswith(b"\r\n"):
    info += c.recv(65536)
for line in info.decode().splitlines():
    if line.startswith("connected_clients:"):
        print(line, flush=True)
print("open", len(conns), flush=True)
PY
    sealed "$PY" "$TD/many.py" "$PORT" "$n" >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "all $n sealed clients got PONG" 0 $?
    sed 's/^/    /' "$TD/cli.out"
    assertFileContains "redis counts $n clients" "$TD/cli.out" "^connected_clients:$n"
    assertFileNotContains "redis did not run out of descriptors" "$TD/srv.out" "max number of clients|Too many open files|Error accepting"
    stop_bg srv
}

. shunit2
