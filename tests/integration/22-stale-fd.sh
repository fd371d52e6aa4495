#!/bin/bash
# 22-stale-fd: a sealed socket closed where no interposer sees it (a raw
# system call); the number comes back from open(): the file must get the
# program's bytes as they are, never sealed records, never an error.
. "$(dirname "$0")/lib.sh"

test_reused_fd_number_is_a_file_again() {
    local port
    port=$(free_port)
    loopback_policy "$port"
    bg srv sealed socat -u TCP-LISTEN:"$port",bind=127.0.0.1,reuseaddr OPEN:"$TD/got",creat
    wait_listen "$port" srv || fail "server did not listen"
    sealed "$B/tests/stale_fd" 127.0.0.1 "$port" "$TD/file" 2>"$TD/cli.err"
    assertEquals "stale_fd exit status" 0 $?
    assertEquals "the file holds the plain text" "a file, not a socket" "$(cat "$TD/file")"
    stop_bg srv
}

. shunit2
