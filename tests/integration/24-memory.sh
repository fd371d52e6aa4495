#!/bin/bash
# Buffer memory after a burst (shim/session_buf.c, buf_trim): a sealed
# connection that moved megabytes and then paused gives its buffer pages
# back once it moves again, on both sides, so an idle connection costs a
# few pages however much it once carried.  The session's buffers are shared
# memory (RssShmem).  Checked with tests/programs/burst.py, both ends sealed:
# 8 MB one way (verified byte by byte), a pause longer than the trim
# interval, then a small message each way; then the memory of each process.
. "$(dirname "$0")/lib.sh"

BURST=$ROOT/tests/programs/burst.py

setup_port() {
    PORT=$(free_port)
    loopback_policy "$PORT" || return 1
}

# shmem_kib PID: RssShmem of PID in KiB.
shmem_kib() { awk '/^RssShmem:/ { print $2 }' "/proc/$1/status"; }

# pid_of NAME: the pid the program printed first.
pid_of() { awk '$1 == "pid" { print $2; exit }' "$TD/$1.out"; }

test_burst_then_pause_gives_pages_back() {
    setup_port || { fail "no key"; return 0; }
    bg srv sealed "$PY" "$BURST" serve "$PORT"
    wait_listen "$PORT" srv || { fail "server did not listen"; return 0; }
    bg cli sealed "$PY" "$BURST" send "$PORT" 8000000 0.6 "$TD/go"
    wait_line "$TD/cli.out" '^got ok2$' 60 || { fail "no ok2: $(cat "$TD/cli.out" "$TD/srv.out" "$TD/cli.err")"; return 0; }
    wait_line "$TD/srv.out" '^got ping$' 10 || { fail "server saw no ping"; return 0; }
    assertContains "server received all bytes" "$(cat "$TD/srv.out")" "got 8000000"
    local sp cp s c
    sp=$(pid_of srv); cp=$(pid_of cli)
    s=$(shmem_kib "$sp"); c=$(shmem_kib "$cp")
    echo "RssShmem after the pause: server ${s} KiB, client ${c} KiB"
    # The session mapping is over 500 KiB; what stays is the header pages
    # and at most a page or two of each buffer.
    assertTrue "server keeps ${s} KiB of buffers" "[ '${s:-999}' -le 48 ]"
    assertTrue "client keeps ${c} KiB of buffers" "[ '${c:-999}' -le 48 ]"
    touch "$TD/go"
    wait_bg cli; assertEquals "client exit status" 0 $?
    wait_bg srv; assertEquals "server exit status" 0 $?
    assertContains "server saw a clean end" "$(cat "$TD/srv.out")" "bye"
}

. shunit2
