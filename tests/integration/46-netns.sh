#!/bin/bash
# Two hosts: client and server in two network namespaces joined by a veth
# pair (a random /30 in 10.213.0.0/16), created here and removed in the
# teardown whatever happens.  Real programs across it (socat upload, python
# download, redis-server with redis-cli), both ends sealed: the bytes
# arrive intact, and a capture on the server's veth shows that every
# connection on a policy port starts with the preface and that no
# plaintext marker crosses.  A negative control runs the same unsealed and
# the same check catches it.  Needs root (ip netns); skips, saying why,
# where namespaces cannot be made.
. "$(dirname "$0")/lib.sh"
. "$LIB_DIR/redis_lib.sh"

PROG=$PROGS/sockprog.py
NS_A=ssk-a-$$               # server side
NS_B=ssk-b-$$               # client side
VETH_A=sska$$
VETH_B=sskb$$
NETNS_SKIP=

# Build the two hosts once: A_IP in NS_A, B_IP in NS_B.
scenario_setup() {
    local x=$((RANDOM % 256)) y=$(((RANDOM % 64) * 4))
    A_IP=10.213.$x.$((y + 1))
    B_IP=10.213.$x.$((y + 2))
    if ! command -v ip >/dev/null 2>&1; then
        NETNS_SKIP="no ip command (iproute2)"
        return 0
    fi
    if ! ip netns add "$NS_A" 2>"$SUITE_TMP/netns.err"; then
        NETNS_SKIP="ip netns add is not permitted here: $(head -c 200 "$SUITE_TMP/netns.err")"
        return 0
    fi
    if ! { ip netns add "$NS_B" &&
        ip link add "$VETH_A" type veth peer name "$VETH_B" &&
        ip link set "$VETH_A" netns "$NS_A" &&
        ip link set "$VETH_B" netns "$NS_B" &&
        ip -n "$NS_A" addr add "$A_IP/30" dev "$VETH_A" &&
        ip -n "$NS_B" addr add "$B_IP/30" dev "$VETH_B" &&
        ip -n "$NS_A" link set lo up && ip -n "$NS_B" link set lo up &&
        ip -n "$NS_A" link set "$VETH_A" up && ip -n "$NS_B" link set "$VETH_B" up; } \
        2>>"$SUITE_TMP/netns.err"; then
        NETNS_SKIP="cannot build the veth pair: $(head -c 200 "$SUITE_TMP/netns.err")"
        netns_down
        return 0
    fi
    # the link is up when B reaches A
    local i
    for ((i = 0; i < 50; i++)); do
        ip netns exec "$NS_B" ping -c 1 -W 1 "$A_IP" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "    (no ping reply from $A_IP yet; going on)"
}

netns_down() {
    ip netns del "$NS_A" 2>/dev/null
    ip netns del "$NS_B" 2>/dev/null
    ip link del "$VETH_A" 2>/dev/null   # only if it never left this namespace
    return 0
}

# The namespaces go after every process of ours has been stopped.
eval "lib_$(declare -f oneTimeTearDown)"
oneTimeTearDown() {
    stop_all
    netns_down
    lib_oneTimeTearDown
}

need_netns() {
    [ -z "$NETNS_SKIP" ] && return 0
    echo "    skipped: $NETNS_SKIP"
    startSkipping
    return 1
}

# ns_prefix NS sealed|plain: NSPFX, the words that run a command in NS
# (with the shim and $POLICY when sealed).
ns_prefix() {
    NSPFX=(ip netns exec "$1")
    [ "$2" = sealed ] && NSPFX+=(env LD_PRELOAD="$PRELOAD" SOCKSEAL_POLICY="$POLICY" "${SAN_ENV[@]}")
    return 0
}

# nsbg NAME NS sealed|plain CMD...: bg in a namespace.
nsbg() {
    local name=$1
    ns_prefix "$2" "$3"
    shift 3
    bg "$name" plain "${NSPFX[@]}" "$@"
}

# nsrun NS sealed|plain CMD...: run in a namespace (bounded by $TMO).
nsrun() {
    ns_prefix "$1" "$2"
    shift 2
    plain "${NSPFX[@]}" "$@"
}

# ns_wait_listen NS PORT NAME: until something listens on PORT in NS.
ns_wait_listen() {
    local i
    for ((i = 0; i < 200; i++)); do
        [ -n "$(ip netns exec "$1" ss -Hltn "sport = :$2" 2>/dev/null)" ] && return 0
        running "$3" || { echo "ns_wait_listen: $3 exited" >&2; return 1; }
        sleep 0.05
    done
    echo "ns_wait_listen: nothing listens on $2 in $1" >&2
    return 1
}

# ns_cap_start PORT...: tcpdump on the server's veth for those ports (as
# background "tcpdump", so lib.sh's cap_stop and cap_check apply).
ns_cap_start() {
    local f="tcp port $1" p
    shift
    for p in "$@"; do f="$f or tcp port $p"; done
    CAP=$TD/cap.pcap
    nsbg tcpdump "$NS_A" plain tcpdump -i "$VETH_A" -n -U --immediate-mode -B 65536 -s 0 -w "$CAP" "$f"
    wait_line "$TD/tcpdump.err" "listening on" 10
}

policy_two_hosts() {
    P_DATA=$((7000 + RANDOM % 1000))
    P_REDIS=$((P_DATA + 1000))
    mkkey k >/dev/null || return 1
    write_policy <<EOF
key k $TD/k.key
accept $A_IP:$P_DATA key=k
connect $A_IP:$P_DATA key=k
accept $A_IP:$P_REDIS key=k
connect $A_IP:$P_REDIS key=k
EOF
}

# across sealed|plain: socat upload B->A, python download A->B, redis SET
# and GET from B to A; checks every byte.
across() {
    local how=$1
    nsbg up "$NS_A" "$how" socat -u "TCP-LISTEN:$P_DATA,bind=$A_IP,reuseaddr" "OPEN:$TD/up.got,creat,trunc"
    ns_wait_listen "$NS_A" "$P_DATA" up || return 1
    nsrun "$NS_B" "$how" socat -u "OPEN:$TD/up" "TCP:$A_IP:$P_DATA" 2>"$TD/up-cli.err"
    assertEquals "$how: socat upload exit status" 0 $?
    wait_bg up
    assertSameFile "$how: upload across the veth" "$TD/up" "$TD/up.got"

    nsbg down "$NS_A" "$how" "$PY" "$PROG" server "$A_IP" "$P_DATA" --mode source --reply "$TD/down"
    ns_wait_listen "$NS_A" "$P_DATA" down || return 1
    nsrun "$NS_B" "$how" "$PY" "$PROG" client "$A_IP" "$P_DATA" --recv-out "$TD/down.got" \
        >"$TD/down-cli.out" 2>"$TD/down-cli.err"
    assertEquals "$how: python download exit status" 0 $?
    wait_bg down
    assertSameFile "$how: download across the veth" "$TD/down" "$TD/down.got"

    redis_conf "$P_REDIS" "$A_IP"
    echo "protected-mode no" >>"$TD/redis.conf"
    nsbg srv "$NS_A" "$how" redis-server "$TD/redis.conf"
    ns_wait_listen "$NS_A" "$P_REDIS" srv || return 1
    nsrun "$NS_B" "$how" redis-cli -h "$A_IP" -p "$P_REDIS" SET k "$M3" >"$TD/set.out" 2>"$TD/set.err"
    assertEquals "$how: redis SET" OK "$(cat "$TD/set.out")"
    nsrun "$NS_B" "$how" redis-cli -h "$A_IP" -p "$P_REDIS" GET k >"$TD/get.out" 2>"$TD/get.err"
    assertEquals "$how: redis GET returns the value" "$M3" "$(cat "$TD/get.out")"
    stop_bg srv
}

markers() {
    M1=$(newmarker)
    M2=$(newmarker)
    M3=$(newmarker)
    mkmarked "$TD/up" 1000000 "$M1"
    mkmarked "$TD/down" 1000000 "$M2"
}

# captured sealed|plain: across, with the capture running; 1 on a setup failure
captured() {
    policy_two_hosts || { fail "no key"; return 1; }
    markers
    ns_cap_start "$P_DATA" "$P_REDIS" || { fail "no capture"; return 1; }
    across "$1" || { fail "setup across the veth failed"; return 1; }
    cap_stop
}

test_sealed_across_two_hosts_no_plaintext_on_the_veth() {
    need_netns || return 0
    captured sealed || return 0
    cap_check --preface "$PREFACE_HEX" --marker "$M1" --marker "$M2" --marker "$M3" \
        --min-conns 4 --min-bytes 2000000
    assertEquals "sealed: every connection starts with the preface, no marker on the veth" 0 $?
}

test_negative_control_plain_across_two_hosts_is_caught() {
    need_netns || return 0
    captured plain || return 0
    cap_check --marker "$M1" --marker "$M2" --marker "$M3" --expect-marker --min-conns 4 \
        --min-bytes 2000000
    assertEquals "plain: the markers are visible on the veth" 0 $?
    cap_check --preface "$PREFACE_HEX" --marker "$M1" --min-conns 4
    assertNotEquals "plain: the sealed check fails" 0 $?
}

test_sealed_client_to_plain_server_across_hosts_refused() {
    # the client's policy seals the port, the server is not sealed: the
    # client fails closed and only its handshake crosses
    need_netns || return 0
    policy_two_hosts || { fail "no key"; return 0; }
    markers
    sed -i "s/^connect .*/& timeout=2000/" "$POLICY"
    nsbg up "$NS_A" plain socat -u "TCP-LISTEN:$P_DATA,bind=$A_IP,reuseaddr" "OPEN:$TD/up.got,creat,trunc"
    ns_wait_listen "$NS_A" "$P_DATA" up || { fail "server did not listen"; return 0; }
    ns_cap_start "$P_DATA" || { fail "no capture"; return 0; }
    nsrun "$NS_B" sealed "$PY" "$PROG" client "$A_IP" "$P_DATA" --send "$TD/up" \
        >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "sealed client against a plain server: connect failed" 3 $?
    wait_bg up
    cap_stop
    assertFileNotContains "the plain server got no plaintext" "$TD/up.got" "$M1"
    cap_check --preface "$PREFACE_HEX" --marker "$M1" --min-conns 1
    assertEquals "only the preface and message 1 crossed" 0 $?
}

. shunit2
