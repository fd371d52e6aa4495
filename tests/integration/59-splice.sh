#!/bin/bash
# splice(), vmsplice() and tee() move sealed bytes (issue 14): the shim
# emulates splice on a sealed socket (shim/hook_splice.c), with exact
# counts through its own pipe (shim/shuttle.h).  tests/helpers/splicer.c:
# an echo server that moves every byte with splice only (blocking, or
# non-blocking under edge-triggered epoll, where a lost readiness report
# stalls it), and clients that send with vmsplice() + splice() and receive
# with splice() + tee().  Four concurrent 1 MiB echoes each way, both ends
# sealed, every byte compared, the capture showing the preface and no
# marker.  The calls' errors and partial moves are compared with the same
# program on plain TCP.
. "$(dirname "$0")/lib.sh"

SPLICER=$B/tests/splicer
N=4
SIZE=$((1024 * 1024))

# echoes MODE [nnp]: N concurrent clients against "serve MODE", all sealed
# (nnp: both in sandbox mode, the shim without its pipe).
echoes() {
    local i pids=() rc
    PORT=$(free_port)
    loopback_policy "$PORT" || { fail "no key"; return 0; }
    M=$(newmarker)
    mkmarked "$TD/in.bin" "$SIZE" "$M"
    cap_start "$PORT" || { fail "no capture"; return 0; }
    bg srv sealed "$SPLICER" serve "$PORT" "$1" "$N" $2
    wait_listen "$PORT" srv || { fail "server did not listen"; return 0; }
    for i in $(seq "$N"); do
        sealed "$SPLICER" client "$PORT" "$TD/in.bin" "$TD/out$i.bin" $2 \
            >"$TD/cli$i.out" 2>"$TD/cli$i.err" &
        pids+=($!)
    done
    for i in $(seq "$N"); do
        rc=0
        wait "${pids[$((i - 1))]}" || rc=$?
        assertEquals "client $i: exit status" 0 "$rc"
        assertSameFile "client $i: the echo (spliced)" "$TD/in.bin" "$TD/out$i.bin"
        assertSameFile "client $i: the tee'd copy" "$TD/in.bin" "$TD/out$i.bin.tee"
    done
    rc=0
    wait_bg srv || rc=$?
    assertEquals "server: exit status" 0 "$rc"
    sed 's/^/    /' "$TD/srv.out" "$TD/srv.err" | head -20
    [ "$1" = et ] && assertFileContains "server: every byte echoed" "$TD/srv.out" \
        "served $N $((N * SIZE))"
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$M" --min-conns "$N" \
        --min-bytes $((2 * N * SIZE))
    assertEquals "capture: preface on every connection, no plaintext" 0 $?
}

test_blocking_splice_echoes() { echoes block; }
test_edge_triggered_nonblocking_splice_echoes() { echoes et; }
# In a sandbox (prctl(PR_SET_NO_NEW_PRIVS) in the parent, the work in a
# forked child): the shim makes no pipe of its own there and falls back to
# FIONREAD and PIPE_BUF-sized writes, which must be as exact.
test_sandboxed_children_splice_without_the_shims_pipe() { echoes block nnp; }

# errors HOW [nnp]: "splicer errors" against "serve block 1", both HOW;
# the output in $TD/errors.HOW[.nnp].
errors_run() {
    local port=$(free_port) out=$TD/errors.$1${2:+.$2}
    if [ "$1" = sealed ] && [ -z "$2" ]; then
        loopback_policy "$port" || return 1
        cap_start "$port" || return 1
    elif [ "$1" = sealed ]; then
        # the key of the first sealed run (mkkey never overwrites)
        sed -i "s/:[0-9]* key=k/:$port key=k/" "$POLICY"
    fi
    bg esrv "$1" "$SPLICER" serve "$port" block 1
    wait_listen "$port" esrv || return 1
    "$1" "$SPLICER" errors "$port" $2 >"$out" 2>&1
    echo "exit $?" >>"$out"
    wait_bg esrv
    echo "server exit $?" >>"$out"
}

# What splice refuses, when it must not wait, what a partial move leaves
# (EAGAIN on a full pipe, EPIPE into a pipe nobody reads: the bytes stay;
# 4 of 10 bytes: the socket stays readable), the ends: the same as on TCP.
test_splice_errors_and_partial_moves_as_on_tcp() {
    errors_run plain || { fail "plain run did not start"; return 0; }
    errors_run sealed || { fail "sealed run did not start"; return 0; }
    cap_stop
    assertFileContains "plain run completed" "$TD/errors.plain" "exit 0"
    diff -u "$TD/errors.plain" "$TD/errors.sealed" | sed 's/^/    /'
    assertEquals "sealed splice returns what plain TCP's does, line by line" \
        "$(cat "$TD/errors.plain")" "$(cat "$TD/errors.sealed")"
    cap_check --preface "$PREFACE_HEX" --marker "0123456789" --marker "hello" \
        --min-conns 1
    assertEquals "capture: preface, no plaintext" 0 $?
    errors_run sealed nnp || { fail "sandboxed run did not start"; return 0; }
    diff -u "$TD/errors.plain" "$TD/errors.sealed.nnp" | sed 's/^/    /'
    assertEquals "in a sandbox (the shim without its pipe) too" \
        "$(cat "$TD/errors.plain")" "$(cat "$TD/errors.sealed.nnp")"
}

# A permissive server's plaintext client: the session is PLAIN and the
# kernel splices the socket itself; a sealed client to the same server at
# the same time is sealed.
test_permissive_plain_client_spliced_by_the_kernel() {
    PORT=$(free_port)
    loopback_policy "$PORT" mode=permissive || { fail "no key"; return 0; }
    mkdata "$TD/in.bin" "$SIZE"
    bg srv sealed "$SPLICER" serve "$PORT" et 2
    wait_listen "$PORT" srv || { fail "server did not listen"; return 0; }
    plain "$SPLICER" client "$PORT" "$TD/in.bin" "$TD/plain.bin" >"$TD/p.out" 2>&1
    assertEquals "plaintext client: exit status" 0 $?
    sealed "$SPLICER" client "$PORT" "$TD/in.bin" "$TD/sealed.bin" >"$TD/s.out" 2>&1
    assertEquals "sealed client: exit status" 0 $?
    wait_bg srv
    assertEquals "server: exit status" 0 $?
    assertSameFile "plaintext client: the echo" "$TD/in.bin" "$TD/plain.bin"
    assertSameFile "sealed client: the echo" "$TD/in.bin" "$TD/sealed.bin"
}

. shunit2
