#!/bin/bash
# The program never holds the wire (docs/standin.md): on a sealed connection
# every way around the shim fails, and the wire never carries a marker.
#   - raw syscall instructions (write, sendto, sendmsg, writev, read) in
#     both roles get errors, while the shim's calls keep working;
#   - libc's syscall() for connect/accept4/write/read goes through the shim;
#   - a child exec'd with an empty environment (no shim) that inherits the
#     connection, and a process without the shim that receives it by
#     SCM_RIGHTS, get errors on write and read;
#   - the descriptor numbers and the socket's identity are what they would
#     be without the shim;
#   - a negative control without the shim shows the marker on the wire.
. "$(dirname "$0")/lib.sh"

BYPASS=$B/tests/bypass

setup_port() {
    PORT=$(free_port)
    loopback_policy "$PORT" || return 1
}

# run_pair HOW MODE [--libc]: the bypass server and client; both must exit 0.
run_pair() {
    local how=$1 mode=$2 extra=${3:-}
    M=$(newmarker)
    bg srv "$how" "$BYPASS" server "$PORT" "$M" $extra
    wait_listen "$PORT" srv || return 1
    "$how" "$BYPASS" "$mode" "$PORT" "$M" $extra >"$TD/cli.out" 2>"$TD/cli.err"
    CLI_RC=$?
    wait_bg srv
    SRV_RC=$?
    sed 's/^/    client: /' "$TD/cli.out"
    sed 's/^/    server: /' "$TD/srv.out"
    return 0
}

# check_sealed MODE [--libc]: MODE's bypasses fail, the wire is sealed.
check_sealed() {
    setup_port || { fail "no key"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    run_pair sealed "$@" || { fail "setup failed"; return 0; }
    cap_stop
    assertEquals "client: every bypass blocked, exchange ok" 0 "$CLI_RC"
    assertEquals "server: every bypass blocked, exchange ok" 0 "$SRV_RC"
    cap_check --preface "$PREFACE_HEX" --marker "$M" --min-conns 1
    assertEquals "preface, no marker on the wire" 0 $?
}

test_raw_syscalls_fail_in_both_roles() {
    check_sealed client
    assertTrue "the client tried the raw calls" "grep -q 'raw sendmsg: blocked' '$TD/cli.out'"
    assertTrue "the server tried the raw calls" "grep -q 'raw writev: blocked' '$TD/srv.out'"
}

test_libc_syscall_goes_through_the_shim() {
    check_sealed client --libc
}

test_exec_without_shim_cannot_write() {
    check_sealed exec
    assertTrue "the bare child's write failed" "grep -q '^write: blocked' '$TD/cli.out'"
    assertTrue "the bare child's read failed" "grep -q '^read: blocked' '$TD/cli.out'"
}

# The program takes the shim out of its environment and runs a command with
# system(), whose /bin/sh glibc spawns past the exec hooks: that child, too,
# gets only the stand-in.
test_system_without_shim_gets_no_socket() {
    check_sealed system
    assertTrue "the child's write failed" "grep -q '^write: blocked' '$TD/cli.out'"
    assertFalse "no connected socket reached it" "grep -q 'connected socket on fd' '$TD/cli.out'"
}

# A set-user-ID image drops LD_PRELOAD in the loader: the shim, seeing that
# before exec, gives it only the stand-in, never the socket (the child
# scans all its fds for a connected socket, in every test above too).
test_setuid_exec_gets_no_socket() {
    cp "$BYPASS" "$TD/bypass-suid" && chown nobody "$TD/bypass-suid" &&
        chmod 4755 "$TD/bypass-suid" && chmod 755 "$TD" ||
        { fail "cannot make a set-user-ID copy"; return 0; }
    check_sealed execsuid "$TD/bypass-suid"
    assertTrue "the set-user-ID child's write failed" "grep -q '^write: blocked' '$TD/cli.out'"
    assertFalse "no connected socket reached it" "grep -q 'connected socket on fd' '$TD/cli.out'"
}

test_scm_rights_to_unshimmed_process_cannot_write() {
    check_sealed pass
    assertTrue "the receiver's write failed" "grep -q '^write: blocked' '$TD/cli.out'"
}

test_descriptor_numbers_and_identity() {
    setup_port || { fail "no key"; return 0; }
    M=$(newmarker)
    bg srv sealed "$BYPASS" server "$PORT" "$M"
    wait_listen "$PORT" srv || return 1
    sealed "$BYPASS" fds "$PORT" >"$TD/cli.out" 2>"$TD/cli.err"
    assertEquals "fds: numbers, identity and limits as without the shim" 0 $?
    sed 's/^/    client: /' "$TD/cli.out"
    wait_bg srv
}

test_negative_control_without_shim_leaks() {
    # (Unsealed, the raw reads eat the other side's bytes and the
    # exchange may wait for ever: bounded short, it fails either way.)
    local TMO=10
    setup_port || { fail "no key"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    run_pair plain client || { fail "setup failed"; return 0; }
    cap_stop
    assertNotEquals "unsealed: the raw calls get through" 0 "$CLI_RC"
    cap_check --marker "$M" --expect-marker --min-conns 1
    assertEquals "unsealed: the marker is on the wire" 0 $?
}

. shunit2
