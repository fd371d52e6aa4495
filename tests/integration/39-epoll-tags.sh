#!/bin/bash
# No tagged epoll event ever reaches the program (tests/helpers/epoll_tags.c):
# a wait already blocked when the first sealed fd is registered (apache's
# listener thread), a dup'ed epoll fd, the original closed while a copy
# waits, a close from another thread during a wait, close_range, fork, and
# an exec'd image that inherits the instance.  Every event must carry the
# program's own data, the payload must arrive whole, and the capture shows
# the preface on every connection and no plaintext.
. "$(dirname "$0")/lib.sh"

run_scenario() {
    local sc=$1 port mark
    port=$(free_port)
    mark=$(newmarker)
    loopback_policy "$port" || return 1
    cap_start "$port" || return 1
    sealed "$B/tests/epoll_tags" "$port" "$mark" "$sc" >"$TD/out.out" 2>"$TD/out.err"
    assertEquals "epoll_tags $sc exit status" 0 $?
    assertFileContains "$sc: the program saw only its own events" "$TD/out.out" "^ok $sc events=[1-9]"
    assertFileNotContains "$sc: no FAIL" "$TD/out.err" "FAIL"
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$mark" --min-conns 1
    assertEquals "$sc: capture" 0 $?
}

test_wait_began_before_first_sealed_registration() { run_scenario early; }
test_wait_through_dup() { run_scenario dup; }
test_original_closed_copy_waits() { run_scenario closed; }
test_close_from_another_thread() { run_scenario thread; }
test_close_range_then_new_instance() { run_scenario range; }
test_fork_child_waits_on_inherited() { run_scenario fork; }
test_exec_image_inherits_instance() {
    run_scenario exec
    assertFileContains "the exec'd image waited" "$TD/out.out" "^ok exec-child"
}

. shunit2
