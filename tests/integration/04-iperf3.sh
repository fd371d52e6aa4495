#!/bin/bash
# iperf3 client and server, both sealed: control + data connections on one
# port, select(), non-blocking sockets, -R, -Z (sendfile).
. "$(dirname "$0")/lib.sh"

setup_iperf() {
    PORT=$(free_port)
    loopback_policy "$PORT" || return 1
    bg srv sealed iperf3 -s -1 -p "$PORT" -B 127.0.0.1
    wait_listen "$PORT" srv
}

# json_bytes FILE: "sent received" from iperf3 -J output, or "error: ..."
json_bytes() {
    "$PY" - "$1" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception as e:
    print("error: unreadable JSON: %s" % e); sys.exit(0)
if "error" in d:
    print("error: %s" % d["error"]); sys.exit(0)
e = d["end"]
print(int(e["sum_sent"]["bytes"]), int(e["sum_received"]["bytes"]))
PY
}

# run_client ARGS...: sealed iperf3 -c; checks status and bytes; sets SENT RECEIVED
run_client() {
    sealed iperf3 -c 127.0.0.1 -p "$PORT" -J "$@" >"$TD/cli.json" 2>"$TD/cli.err"
    assertEquals "iperf3 -c $* exit status" 0 $?
    wait_bg srv
    assertEquals "iperf3 -s exit status" 0 $?
    local r
    r=$(json_bytes "$TD/cli.json")
    case "$r" in error*) fail "iperf3 $*: $r"; SENT=0; RECEIVED=0; return ;; esac
    read -r SENT RECEIVED <<<"$r"
    assertTrue "bytes sent > 0 ($SENT)" "[ $SENT -gt 0 ]"
    assertTrue "bytes received > 0 ($RECEIVED)" "[ $RECEIVED -gt 0 ]"
}

test_iperf3_time() {
    setup_iperf || { fail "iperf3 -s did not start"; return 0; }
    run_client -t 2
}

test_iperf3_bytes() {
    setup_iperf || { fail "iperf3 -s did not start"; return 0; }
    run_client -n 64M
    assertTrue "at least 64 MiB sent ($SENT)" "[ ${SENT:-0} -ge 67108864 ]"
}

test_iperf3_reverse() {
    setup_iperf || { fail "iperf3 -s did not start"; return 0; }
    run_client -R -t 1
}

test_iperf3_parallel_streams() {
    setup_iperf || { fail "iperf3 -s did not start"; return 0; }
    run_client -P 2 -t 1
}

test_iperf3_sendfile() {
    setup_iperf || { fail "iperf3 -s did not start"; return 0; }
    cap_start "$PORT"
    run_client -Z -t 1
    cap_stop
    cap_check --preface "$PREFACE_HEX" --min-conns 2
    assertEquals "control and data connections sealed" 0 $?
}

. shunit2
