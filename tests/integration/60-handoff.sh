#!/bin/bash
# Sessions travel with their socket (issue 14): a sealed connection that
# already carried sealed bytes, with plaintext the shim decrypted but the
# program has not read yet, is handed to another image: execve onto 0/1
# (inetd), posix_spawn, vfork+execve, a chain of execs, a spawned child
# while the parent keeps its copy, SCM_RIGHTS to a separately exec'd
# worker (one fd, three in one message, MSG_CMSG_CLOEXEC, the sender
# keeping its copy), on the accepting and on the connecting side, strict
# and permissive.  The new holder continues the same session: every byte
# of every stream checked by offset (tests/helpers/handoff.c), the HOP
# lines of each holder in order, the end-of-stream mark once, from the
# last holder (a clean end, read twice).  A close-on-exec connection is
# gone from the new image and the peer gets a clean end; a worker started
# without the shim gets a stand-in whose read/write fail (ENOTCONN,
# EPIPE).  Controls: every flow with no shim at all, and the sealed flows
# that work without issue 14 (no hand-off, exec before any byte).
# Capture of every sealed test: the preface on every connection, no marker.
. "$(dirname "$0")/lib.sh"

HANDOFF=$B/tests/handoff
A=262144 BB=16384 N=1048576   # handoff.c's defaults: a=, b=, n=

# setup [ACCEPT-OPTIONS]: PORT, the policy, the marker, the capture.
setup() {
    PORT=$(free_port)
    loopback_policy "$PORT" "${1:-}" || return 1
    HANDOFF_MARKER=$(newmarker)
    export HANDOFF_MARKER
    cap_start "$PORT"
}

# pair SRV-HOW CLI-HOW "SERVER ARGS" "CLIENT ARGS" [CLIENTS]: the server in
# the background, CLIENTS (1) clients at once; SRV_RC and CLI_RC (the
# worst) are their exit statuses; logs srv.err, cli1.err...
pair() {
    local shw=$1 chw=$2 sargs=$3 cargs=$4 ncli=${5:-1} i rc
    # shellcheck disable=SC2086
    bg srv "$shw" "$HANDOFF" serve "$PORT" $sargs
    wait_listen "$PORT" srv || { SRV_RC=99 CLI_RC=99; return 1; }
    for ((i = 1; i <= ncli; i++)); do
        # shellcheck disable=SC2086
        bg "cli$i" "$chw" "$HANDOFF" connect "$PORT" $cargs
    done
    CLI_RC=0
    for ((i = 1; i <= ncli; i++)); do
        rc=0
        wait_bg "cli$i" || rc=$?
        [ "$rc" = 0 ] || CLI_RC=$rc
    done
    SRV_RC=0
    wait_bg srv || SRV_RC=$?
}

# The report lines of handoff.c (see its header).
ok_c() {   # FILE WHO HOPS TAIL: the connecting side's part ended exact
    assertFileContains "$2 got B, SUM, N whole, its tail, a clean end twice" "$1" \
        "^handoff $2\[[0-9]+\]: ok a=$A b=$BB n=$N hops=$3 tail=$4 eof=clean\$"
}
ok_s() {   # FILE WHO PEERHOPS: the accepting side's part ended exact
    assertFileContains "$2 got A whole, BYE, a clean end twice" "$1" \
        "^handoff $2\[[0-9]+\]: ok a=$A n=$N peerhops=$3 sum=[0-9a-f]{16}\$"
}
no_warn() {   # FILE...: the shim complained about nothing
    local f
    for f in "$@"; do
        assertFileNotContains "no shim warning in ${f#"$TD"/}" "$f" 'sockseal\[[0-9]+\]: (warn|error)'
    done
}
sealed_capture() {   # [MIN-CONNS]
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$HANDOFF_MARKER" \
        --marker "HANDOFF-NOSHIM-WORKER" --min-conns "${1:-1}" --min-bytes "$((A + N))"
    assertEquals "capture: the preface on every connection, no marker" 0 $?
}

# ------------------------------------------- the accepting side hands off

# s_exec_like "MODE ARGS" CLIENT-HOPS [ACCEPT-OPTIONS]: the server reads
# REQ, answers ACK+B, then hands the connection on by MODE; a sealed
# client checks everything (and sees CLIENT-HOPS HOP lines)
s_exec_like() {
    setup "${3:-}" || { fail "setup"; return 0; }
    pair sealed sealed "$1" ""
    assertEquals "server ($1) exit status" 0 "$SRV_RC"
    assertEquals "client exit status" 0 "$CLI_RC"
    ok_c "$TD/cli1.err" client "$2" 0
    ok_s "$TD/srv.err" s-handler 0
    case $1 in mode=spawn | mode=vfork)
        assertFileContains "the server waited for its handler" "$TD/srv.err" "server\[[0-9]+\]: handler exited 0\$" ;;
    esac
    no_warn "$TD/srv.err" "$TD/cli1.err"
    sealed_capture
}
test_s_execve() { s_exec_like mode=execve 0; }
test_s_posix_spawn() { s_exec_like mode=spawn 0; }
test_s_vfork_execve() { s_exec_like mode=vfork 0; }
test_s_execve_permissive() { s_exec_like mode=execve 0 mode=permissive; }
test_s_posix_spawn_permissive() { s_exec_like mode=spawn 0 mode=permissive; }
# the handler execs itself 3 times; each hop reads 4096 bytes of A and
# writes HOP k; the last one does the rest
test_s_exec_chain() { s_exec_like "mode=chain hops=3" 3; }
test_s_exec_chain_permissive() { s_exec_like "mode=chain hops=3" 3 mode=permissive; }

# three connections one after another, each handed to its own spawned
# handler while the server's table carries the earlier ones' leftovers
test_s_posix_spawn_three_connections() {
    setup || { fail "setup"; return 0; }
    pair sealed sealed "mode=spawn count=3" "" 3
    assertEquals "server exit status" 0 "$SRV_RC"
    assertEquals "client exit statuses" 0 "$CLI_RC"
    local i
    for i in 1 2 3; do ok_c "$TD/cli$i.err" client 0 0; done
    assertEquals "three handlers ended exact" 3 \
        "$(grep -cE "^handoff s-handler\[[0-9]+\]: ok a=$A n=$N peerhops=0 " "$TD/srv.err")"
    assertEquals "three handlers exited 0" 3 "$(grep -c 'handler exited 0$' "$TD/srv.err")"
    no_warn "$TD/srv.err" "$TD"/cli?.err
    sealed_capture 3
}

# the connection is close-on-exec and not dup'ed: the new image must not
# have it, and the client gets a clean end of stream (the mark sent once,
# on the exec's behalf), read twice.  a=0: nothing unread in the kernel,
# so a plain close would be a FIN too.
s_cloexec() {
    setup "${1:-}" || { fail "setup"; return 0; }
    pair sealed sealed "mode=cloexec" "mode=eof a=0"
    assertEquals "server (then probe) exit status" 0 "$SRV_RC"
    assertEquals "client exit status" 0 "$CLI_RC"
    assertFileContains "the exec'd image has no such fd" "$TD/srv.err" "^handoff probe\[[0-9]+\]: ok fd [0-9]+: EBADF after exec\$"
    assertFileContains "client: B whole, then a clean end, twice" "$TD/cli1.err" \
        "^handoff client\[[0-9]+\]: ok eof clean after $BB bytes, twice\$"
    no_warn "$TD/srv.err" "$TD/cli1.err"
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$HANDOFF_MARKER" --min-conns 1 --min-bytes "$BB"
    assertEquals "capture: the preface, no marker" 0 $?
}
test_s_cloexec_gone_clean_end() { s_cloexec; }
test_s_cloexec_gone_clean_end_permissive() { s_cloexec mode=permissive; }

# s_keep MODE WHO [ACCEPT-OPTIONS]: the server keeps its copy after the
# hand-off (keep: posix_spawn; pass-keep: SCM_RIGHTS to a worker): WHO
# writes HOP 1, the server HOP 2 (turns over a socketpair), WHO does the
# rest and exits (no end mark: the server still holds it), then the server
# writes TAIL and its close ends the stream
s_keep() {
    setup "${3:-}" || { fail "setup"; return 0; }
    pair sealed sealed "mode=$1 tail=TAIL\\n" 'tail=TAIL\n'
    assertEquals "server exit status" 0 "$SRV_RC"
    assertEquals "client exit status" 0 "$CLI_RC"
    ok_c "$TD/cli1.err" client 2 5
    ok_s "$TD/srv.err" "s-$2" 0
    assertFileContains "the server wrote its tail after the $2" "$TD/srv.err" "kept copy closed after the $2\$"
    no_warn "$TD/srv.err" "$TD/cli1.err"
    sealed_capture
}
test_s_keep_both_write() { s_keep keep handler; }
test_s_keep_both_write_permissive() { s_keep keep handler mode=permissive; }

# ------------------------------------------------------------ SCM_RIGHTS

# s_pass MODE CLIENTS [ACCEPT-OPTIONS]: the server accepts CLIENTS, reads
# each one's REQ, answers, and sends all the fds in one message to a
# fork+exec'd worker (a new image running the shim) that does the rest
s_pass() {
    local mode=$1 ncli=$2 i
    setup "${3:-}" || { fail "setup"; return 0; }
    pair sealed sealed "mode=$mode count=$ncli" "" "$ncli"
    assertEquals "server exit status (the worker's)" 0 "$SRV_RC"
    assertEquals "client exit statuses" 0 "$CLI_RC"
    for ((i = 1; i <= ncli; i++)); do ok_c "$TD/cli$i.err" client 0 0; done
    assertEquals "the worker ended every connection exact" "$ncli" \
        "$(grep -cE "^handoff s-worker\[[0-9]+\]: ok a=$A n=$N peerhops=0 " "$TD/srv.err")"
    assertFileContains "the worker got them in one message" "$TD/srv.err" "s-worker\[[0-9]+\]: served $ncli connection"
    no_warn "$TD/srv.err" "$TD"/cli?.err
    sealed_capture "$ncli"
}
test_s_pass_close() { s_pass pass 1; }
test_s_pass_close_permissive() { s_pass pass 1 mode=permissive; }
test_s_pass_three_in_one_message() { s_pass pass 3; }
test_s_pass_cmsg_cloexec() {
    s_pass pass-cloexec 2
    assertFileContains "the worker's fds were close-on-exec" "$TD/srv.err" "served 2 connection\(s\) \(fds were FD_CLOEXEC\)"
}

test_s_pass_keep_both_write() { s_keep pass-keep worker; }
test_s_pass_keep_both_write_permissive() { s_keep pass-keep worker mode=permissive; }

# a worker exec'd with an environment lacking LD_PRELOAD receives only the
# stand-in: read fails ENOTCONN, write EPIPE; what it tried to write never
# reaches the client or the wire.  (Passes without issue 14 too.)
test_s_pass_to_unshimmed_worker_gets_standin() {
    setup || { fail "setup"; return 0; }
    pair sealed sealed "mode=pass env=noshim" ""
    assertEquals "worker: read ENOTCONN, write EPIPE" 0 "$SRV_RC"
    assertFileContains "what the unshimmed worker saw" "$TD/srv.err" \
        "^handoff s-worker\[[0-9]+\]: noshim read=-1 ENOTCONN write=-1 EPIPE extra=[01] tcp=0\$"
    assertNotEquals "the client cannot end well" 0 "$CLI_RC"
    assertFileContains "the client failed after the hand-off, saying why" "$TD/cli1.err" \
        "^handoff client\[[0-9]+\]: FAIL read (B|SUM)"
    assertFileLacksString "the worker's bytes never reached the client" "$TD/cli1.err" "HANDOFF-NOSHIM"
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$HANDOFF_MARKER" --marker "HANDOFF-NOSHIM-WORKER" --min-conns 1
    assertEquals "capture: the preface, no marker" 0 $?
}

# --------------------------------------------- the connecting side hands off

# c_handoff MODE [HOPS]: the client writes REQ+A, reads ACK, then hands its
# connection on; a sealed inline server checks everything
c_exec_like() {
    local hops=${2:-0} args="mode=$1"
    [ "$1" = chain ] && args="mode=chain hops=$hops"
    setup || { fail "setup"; return 0; }
    pair sealed sealed "" "$args"
    assertEquals "server exit status" 0 "$SRV_RC"
    assertEquals "client ($1) exit status" 0 "$CLI_RC"
    ok_c "$TD/cli1.err" c-handler 0 0
    ok_s "$TD/srv.err" server "$hops"
    case $1 in spawn | vfork)
        assertFileContains "the client waited for its handler" "$TD/cli1.err" "client\[[0-9]+\]: handler exited 0\$" ;;
    esac
    no_warn "$TD/srv.err" "$TD/cli1.err"
    sealed_capture
}
test_c_execve() { c_exec_like execve; }
test_c_posix_spawn() { c_exec_like spawn; }
test_c_vfork_execve() { c_exec_like vfork; }
test_c_exec_chain() { c_exec_like chain 3; }

test_c_cloexec_gone_clean_end() {
    setup || { fail "setup"; return 0; }
    pair sealed sealed "mode=eof b=0" "mode=cloexec a=0"
    assertEquals "server exit status" 0 "$SRV_RC"
    assertEquals "client (then probe) exit status" 0 "$CLI_RC"
    assertFileContains "the exec'd image has no such fd" "$TD/cli1.err" "^handoff probe\[[0-9]+\]: ok fd [0-9]+: EBADF after exec\$"
    assertFileContains "server: a clean end, twice" "$TD/srv.err" \
        "^handoff server\[[0-9]+\]: ok eof clean after 0 bytes, twice\$"
    no_warn "$TD/srv.err" "$TD/cli1.err"
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$HANDOFF_MARKER" --min-conns 1
    assertEquals "capture: the preface, no marker" 0 $?
}

# the client keeps its copy: handler HOP 1, client HOP 2, the handler the rest
test_c_keep_both_write() {
    setup || { fail "setup"; return 0; }
    pair sealed sealed "" "mode=keep"
    assertEquals "server exit status" 0 "$SRV_RC"
    assertEquals "client exit status" 0 "$CLI_RC"
    ok_c "$TD/cli1.err" c-handler 0 0
    ok_s "$TD/srv.err" server 2
    no_warn "$TD/srv.err" "$TD/cli1.err"
    sealed_capture
}

c_pass() {
    setup || { fail "setup"; return 0; }
    pair sealed sealed "" "mode=$1"
    assertEquals "server exit status" 0 "$SRV_RC"
    assertEquals "client exit status (the worker's)" 0 "$CLI_RC"
    ok_c "$TD/cli1.err" c-worker 0 0
    ok_s "$TD/srv.err" server "$2"
    no_warn "$TD/srv.err" "$TD/cli1.err"
    sealed_capture
}
test_c_pass_close() { c_pass pass 0; }
test_c_pass_keep_both_write() { c_pass pass-keep 2; }

# --------------------------------------------------------------- controls

# every flow above with no shim anywhere: proves handoff.c and this script
test_control_all_flows_unsealed() {
    PORT=$(free_port)
    HANDOFF_MARKER=$(newmarker)
    export HANDOFF_MARKER
    local s c n
    while IFS='|' read -r s c n; do
        pair plain plain "$s" "$c" "$n"
        assertEquals "unsealed [$s] / [$c]: server" 0 "$SRV_RC"
        assertEquals "unsealed [$s] / [$c]: client" 0 "$CLI_RC"
        if [ "$SRV_RC$CLI_RC" != 00 ]; then
            sed 's/^/    | /' "$TD/srv.err" "$TD"/cli?.err
        fi
    done <<'EOF'
mode=execve||1
mode=spawn count=3||3
mode=vfork||1
mode=chain hops=3||1
mode=cloexec|mode=eof a=0|1
mode=keep tail=TAIL\n|tail=TAIL\n|1
mode=pass||1
mode=pass count=3||3
mode=pass-cloexec count=2||2
mode=pass-keep tail=TAIL\n|tail=TAIL\n|1
|mode=execve|1
|mode=spawn|1
|mode=vfork|1
|mode=chain hops=3|1
mode=eof b=0|mode=cloexec a=0|1
|mode=keep|1
|mode=pass|1
|mode=pass-keep|1
EOF
}

# sealed, no hand-off, and a hand-off by exec before any byte moved: both
# work without issue 14
test_control_sealed_inline() {
    setup || { fail "setup"; return 0; }
    pair sealed sealed "" ""
    assertEquals "server exit status" 0 "$SRV_RC"
    assertEquals "client exit status" 0 "$CLI_RC"
    ok_c "$TD/cli1.err" client 0 0
    ok_s "$TD/srv.err" server 0
    no_warn "$TD/srv.err" "$TD/cli1.err"
    sealed_capture
}
test_control_sealed_exec_before_any_byte() {
    setup || { fail "setup"; return 0; }
    pair sealed sealed "mode=early-execve" ""
    assertEquals "server exit status" 0 "$SRV_RC"
    assertEquals "client exit status" 0 "$CLI_RC"
    ok_c "$TD/cli1.err" client 0 0
    ok_s "$TD/srv.err" s-handler 0
    no_warn "$TD/srv.err" "$TD/cli1.err"
    sealed_capture
}

# a plaintext client of a permissive rule stays plaintext across the
# hand-off (spawn, pass); the capture sees the marker (negative control)
test_control_permissive_plain_client_stays_plain() {
    setup mode=permissive || { fail "setup"; return 0; }
    pair sealed plain "mode=spawn" ""
    assertEquals "server exit status" 0 "$SRV_RC"
    assertEquals "plain client exit status" 0 "$CLI_RC"
    ok_c "$TD/cli1.err" client 0 0
    ok_s "$TD/srv.err" s-handler 0
    cap_stop
    cap_check --marker "$HANDOFF_MARKER" --expect-marker
    assertEquals "capture: the plaintext client's marker is seen" 0 $?
}

. shunit2
