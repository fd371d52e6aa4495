#!/bin/bash
# Differential readiness test (tests/helpers/ready_diff.c): one process
# drives the same seeded random operations (peer writes of 1 byte to 100 KiB,
# pauses in reading, read/readv/MSG_PEEK/FIONREAD, poll, epoll LT/ET/ONESHOT
# with ADD/MOD/DEL, dup/dup2/close while registered, shutdowns, peer close)
# against a connection the policy seals at both ends and a plain TCP one,
# and requires the program to observe the same on both: bytes per call,
# readiness, EOF, errno names.  The same run with the "sealed" port left
# unmatched must agree with itself (the harness is deterministic), and a
# deliberately perturbed run must be caught (the comparison is not vacuous).
# The capture proves every sealed connection starts with the preface and
# carries no plaintext marker.
. "$(dirname "$0")/lib.sh"

HELPER=$B/tests/ready_diff
SEED=${READY_DIFF_SEED:-38}
COUNT=${READY_DIFF_COUNT:-500}
OPS=${READY_DIFF_OPS:-80}
# Connections the capture must show: all (pcapcheck.py tells a reused
# address pair after a reset from the connection before).
MINCONNS=$COUNT

scenario_setup() {
    [ -x "$HELPER" ] || echo "38-ready-diff: $HELPER missing (make helpers)" >&2
}

# ports P1 (sealed unless CONTROL=1) and P2 (plain), policy, marker
diff_setup() {
    local key
    key=$(mkkey k)
    P1=$(free_port)
    P2=$(free_port)
    while [ "$P2" = "$P1" ]; do P2=$(free_port); done
    MARK=$(newmarker)
    if [ "${1:-}" = control ]; then
        # a rule for a port nobody uses: the shim is loaded, P1 stays plain
        write_policy <<EOF2
key k $key
connect 127.0.0.1:1 key=k
accept  127.0.0.1:1 key=k
EOF2
    else
        write_policy <<EOF2
key k $key
connect 127.0.0.1:$P1 key=k
accept  127.0.0.1:$P1 key=k
EOF2
    fi
}

# capsum: the capture checker's verdict lines (not one line per connection)
capsum() { grep -vE '^conn ' "$TD/capcheck.out" | tail -n 5 | sed 's/^/    capcheck: /'; }

# run_diff NAME ARGS...: ready_diff with the fixed seed; output in $TD/NAME.out
run_diff() {
    local name=$1 rc=0
    shift
    sealed "$HELPER" --sealed-port "$P1" --plain-port "$P2" --seed "$SEED" \
        --count "$COUNT" --ops "$OPS" --marker "$MARK" "$@" \
        >"$TD/$name.out" 2>"$TD/$name.err" || rc=$?
    # the summary, or the first mismatch report (bounded)
    head -n 400 "$TD/$name.out" | grep -E '^(ready_diff|MISMATCH|  (plain|sealed):)' |
        head -n 12 | sed 's/^/    /'
    return "$rc"
}

# The stream: everything but the ends of the connection (shutdowns, the
# peer's close or reset).  Sealed must be what TCP is, with no exception
# but the extra edge-triggered event that epoll(7) allows (ready_diff.c).
ENDINGS=peer-reset,peer-close,shutdown,peer-shutdown

test_sealed_same_as_tcp() {
    [ -x "$HELPER" ] || { fail "$HELPER missing (make helpers)"; return 0; }
    local rc=0
    diff_setup
    cap_start "$P1" || { fail "no capture"; return 0; }
    run_diff diff --without "$ENDINGS" || rc=$?
    cap_stop
    assertEquals "ready_diff exit status (0: no mismatch)" 0 "$rc"
    assertFileContains "summary" "$TD/diff.out" \
        "^ready_diff: seed=$SEED first=0 sequences=$COUNT ops=[0-9]+ mismatches=0$"
    cap_check --preface "$PREFACE_HEX" --marker "$MARK" \
        --min-conns "$([ "$rc" = 0 ] && echo "$MINCONNS" || echo 1)" >/dev/null ||
        fail "capture: a sealed connection without the preface, or plaintext on the wire"
    capsum
}

# captured_diff NAME ARGS...: ready_diff on a sealed connection under a
# capture that must show the preface on every connection it made (all of
# them when RC, its exit status, is 0) and no plaintext marker.
captured_diff() {
    local name=$1
    shift
    RC=0
    diff_setup
    cap_start "$P1" || { fail "no capture"; RC=99; return 0; }
    run_diff "$name" "$@" || RC=$?
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$MARK" \
        --min-conns "$([ "$RC" = 0 ] && echo "$MINCONNS" || echo 1)" >/dev/null ||
        fail "capture: a sealed connection without the preface, or plaintext on the wire"
}

# Everything, the ends of the connection included: shutdowns, the peer's
# close and reset.  Sealed must be what TCP is here too, with the same one
# allowance (the extra edge).  How the shim makes the ends TCP's:
# docs/endings.md.
test_sealed_same_as_tcp_with_endings() {
    [ -x "$HELPER" ] || { fail "$HELPER missing (make helpers)"; return 0; }
    captured_diff diff
    assertEquals "ready_diff exit status (0: no mismatch)" 0 "$RC"
    assertFileContains "summary" "$TD/diff.out" \
        "^ready_diff: seed=$SEED first=0 sequences=$COUNT ops=[0-9]+ mismatches=0$"
    capsum
}

# The one known divergence (docs/endings.md): data the peer sends after our
# shutdown(SHUT_RDWR) draws TCP's reset; sealed, it cannot (the peer's
# end-of-stream mark is data as well) and is discarded.  Reported and
# counted as skipped, never as passed; a crash, a hang, another exit
# status or plaintext on the wire fails.
test_data_after_shutdown_rdwr() {
    [ -x "$HELPER" ] || { fail "$HELPER missing (make helpers)"; return 0; }
    captured_diff rdwr --data-after-shutdown
    if [ "$RC" = 1 ] && grep -q '^MISMATCH' "$TD/rdwr.out"; then
        echo "    KNOWN DIVERGENCE from TCP: data after shutdown(SHUT_RDWR) (reported, not passed):"
        grep -E -A2 '^MISMATCH' "$TD/rdwr.out" | head -n 3 | sed 's/^/    /'
        startSkipping
    fi
    assertEquals "ready_diff exit status (0: no mismatch)" 0 "$RC"
    capsum
}

# Sequences random seeds of make fuzz-run found, each fixed at its cause
# (docs/endings.md): SEED:SEQUENCE.  An edge-triggered EPOLLOUT
# registration woken by our shutdown; a failed session's registration
# re-armed by a MOD; an edge taken from a poll that pulled the data
# another registration of the socket needed; EPOLLRDHUP after a reset;
# a write-space edge.
FOUND="3544945246:435 3544945246:42 3900676221:610 3900676221:484 240120105:1031 2113586086:478"

test_found_sequences() {
    [ -x "$HELPER" ] || { fail "$HELPER missing (make helpers)"; return 0; }
    local one seed seq rc
    diff_setup
    for one in $FOUND; do
        seed=${one%%:*} seq=${one##*:} rc=0
        sealed "$HELPER" --sealed-port "$P1" --plain-port "$P2" --seed "$seed" \
            --first "$seq" --count 1 --ops "$OPS" --marker "$MARK" \
            >"$TD/found.out" 2>"$TD/found.err" || rc=$?
        assertEquals "seed $seed sequence $seq: no mismatch" 0 "$rc"
        [ "$rc" = 0 ] || grep -E -A2 '^MISMATCH' "$TD/found.out" | head -n 3 | sed 's/^/    /'
    done
}

test_control_unsealed_agrees() {
    [ -x "$HELPER" ] || { fail "$HELPER missing (make helpers)"; return 0; }
    local rc=0
    diff_setup control
    cap_start "$P1" || { fail "no capture"; return 0; }
    run_diff control || rc=$?
    cap_stop
    assertEquals "plain against plain: exit status" 0 "$rc"
    assertFileContains "summary" "$TD/control.out" \
        "^ready_diff: seed=$SEED first=0 sequences=$COUNT ops=[0-9]+ mismatches=0$"
    # the marker is in the data: unsealed, the capture must show it
    cap_check --marker "$MARK" --expect-marker --min-conns "$MINCONNS" >/dev/null ||
        fail "capture of the unsealed control does not show the marker"
    capsum
}

test_injected_difference_is_caught() {
    [ -x "$HELPER" ] || { fail "$HELPER missing (make helpers)"; return 0; }
    local rc=0
    diff_setup control
    run_diff inject --inject-short-read || rc=$?
    assertEquals "a perturbed run: exit status 1" 1 "$rc"
    assertFileContains "mismatch reported with the seed" "$TD/inject.out" \
        "^MISMATCH seed=$SEED sequence=[0-9]+ step=[0-9]+: "
    assertFileContains "operations listed" "$TD/inject.out" "^ +[0-9]+ read s[0-9]"
}

. shunit2
