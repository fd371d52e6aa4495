#!/bin/bash
# OpenSSH server and client, both ends sealed.  sshd (-D, not -d) accepts,
# forks, and the child re-execs /usr/sbin/sshd with the connection on fds
# 0/1 (the new image must adopt it: accept rule against the local address);
# the re-exec'd monitor writes and reads the banners, then forks a sandboxed
# preauth child (chroot /run/sshd, setuid sshd, rlimits, seccomp) that does
# the key exchange and authentication on the same connection and exits; the
# monitor then carries the session.  sshd speaks first (banner) while the
# client sends its banner at once too; sshd reads the banner 1 byte a read.
# Tests run as root: the login is root with a fresh key.
. "$(dirname "$0")/lib.sh"

SSHD=/usr/sbin/sshd   # absolute: sshd re-execs itself by this path

scenario_setup() {
    [ -x "$SSHD" ] || echo "41-sshd: $SSHD missing (tests/install-deps.sh)" >&2
    command -v ssh >/dev/null || echo "41-sshd: ssh missing (tests/install-deps.sh)" >&2
    # the privilege-separation chroot sshd needs (the Debian package makes it
    # at boot through tmpfiles.d)
    mkdir -p /run/sshd
    chmod 755 /run/sshd
}

# sshd_setup: host key, client key, config, policy; starts the sealed sshd.
# Sets PORT.
sshd_setup() {
    PORT=$(free_port)
    loopback_policy "$PORT" || return 1
    ssh-keygen -q -t ed25519 -N '' -C sockseal-host -f "$TD/hostkey" >"$TD/keygen.out" 2>&1 || return 1
    ssh-keygen -q -t ed25519 -N '' -C sockseal-client -f "$TD/id" >>"$TD/keygen.out" 2>&1 || return 1
    cp "$TD/id.pub" "$TD/authorized_keys"
    cat >"$TD/sshd_config" <<EOF
Port $PORT
ListenAddress 127.0.0.1
HostKey $TD/hostkey
AuthorizedKeysFile $TD/authorized_keys
PermitRootLogin yes
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile $TD/sshd.pid
LogLevel VERBOSE
EOF
    bg sshd sealed "$SSHD" -D -e -f "$TD/sshd_config"
    wait_listen "$PORT" sshd
}

# sssh ARGS...: the sealed ssh client, logged in as root on the sealed sshd.
sssh() {
    sealed ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile="$TD/kh" -o IdentitiesOnly=yes -o ConnectTimeout=20 \
        -i "$TD/id" -p "$PORT" root@127.0.0.1 "$@"
}

# assert_no_shim_log FILE: the shim logged nothing (it logs on errors only).
assert_no_shim_log() {
    assertFileNotContains "no sockseal log lines in ${1#"$TD"/}" "$1" 'sockseal\[[0-9]+\]'
}

test_echo_ok() {
    sshd_setup || { fail "sshd did not start"; return 0; }
    sssh 'echo ok' </dev/null >"$TD/ok.out" 2>"$TD/ok.err"
    assertEquals "ssh exit status" 0 $?
    assertEquals "remote echo" "ok" "$(cat "$TD/ok.out")"
    # a second login: another fork + re-exec of the listener
    sssh 'echo again' </dev/null >"$TD/again.out" 2>"$TD/again.err"
    assertEquals "second ssh exit status" 0 $?
    assertEquals "second remote echo" "again" "$(cat "$TD/again.out")"
    assertFileContains "sshd accepted the key for root" "$TD/sshd.err" \
        'Accepted publickey for root from 127\.0\.0\.1'
    # the server is sealed: an unsealed client does not get in
    plain ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=no \
        -o UserKnownHostsFile="$TD/kh.plain" -o IdentitiesOnly=yes -o ConnectTimeout=20 \
        -i "$TD/id" -p "$PORT" root@127.0.0.1 'echo ok' </dev/null >"$TD/plain.out" 2>"$TD/plain.err"
    assertNotEquals "an unsealed ssh is refused by the sealed sshd" 0 $?
    assertFileNotContains "the unsealed ssh ran nothing" "$TD/plain.out" '^ok$'
    assertTrue "sshd still running" "running sshd"
    assertFileContains "sshd's shim logs the refused plaintext client with its rule" \
        "$TD/sshd.err" "sockseal\\[[0-9]+\\]: .*policy:3.*preface"
    assert_no_shim_log "$TD/ok.err"
    assert_no_shim_log "$TD/again.err"
}

test_upload_1MiB() {
    local remote
    sshd_setup || { fail "sshd did not start"; return 0; }
    mkdata "$TD/up" $((1024 * 1024))
    sssh "cat > $TD/up.remote" <"$TD/up" >"$TD/up.out" 2>"$TD/up.err"
    assertEquals "ssh upload exit status" 0 $?
    sssh "sha256sum $TD/up.remote" </dev/null >"$TD/sum.out" 2>"$TD/sum.err"
    assertEquals "ssh sha256sum exit status" 0 $?
    remote=$(cut -d' ' -f1 "$TD/sum.out")
    assertEquals "sha256 of the uploaded file, computed remotely" "$(sha "$TD/up")" "$remote"
    assertSameFile "uploaded file" "$TD/up" "$TD/up.remote"
    assert_no_shim_log "$TD/up.err"
    assert_no_shim_log "$TD/sshd.err"
}

test_download_1MiB() {
    sshd_setup || { fail "sshd did not start"; return 0; }
    mkdata "$TD/down" $((1024 * 1024))
    sssh "cat $TD/down" </dev/null >"$TD/down.got" 2>"$TD/down.err"
    assertEquals "ssh download exit status" 0 $?
    assertSameFile "downloaded file" "$TD/down" "$TD/down.got"
    assert_no_shim_log "$TD/down.err"
    assert_no_shim_log "$TD/sshd.err"
}

# Both directions at once, on two logins at the same time: 1 MiB each
# through a remote cat.
test_two_concurrent_1MiB_echoes() {
    local i
    sshd_setup || { fail "sshd did not start"; return 0; }
    for i in 1 2; do
        mkdata "$TD/in$i" $((1024 * 1024))
        sssh 'cat' <"$TD/in$i" >"$TD/out$i" 2>"$TD/echo$i.err" &
        # stdin is the data, so not lib.sh's bg (</dev/null); wait_bg reaps it
        # shellcheck disable=SC2034  # BGPID is lib.sh's
        BGPID["echo$i"]=$!
    done
    for i in 1 2; do
        wait_bg "echo$i"
        assertEquals "ssh $i exit status" 0 $?
        assertSameFile "1 MiB echoed through login $i" "$TD/in$i" "$TD/out$i"
        assert_no_shim_log "$TD/echo$i.err"
    done
    assert_no_shim_log "$TD/sshd.err"
}

test_capture_preface_and_no_plaintext() {
    local m
    m=$(newmarker)
    sshd_setup || { fail "sshd did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    sssh "echo $m" </dev/null >"$TD/m1.out" 2>"$TD/m1.err"
    assertEquals "ssh 1 exit status" 0 $?
    assertEquals "marker echoed back" "$m" "$(cat "$TD/m1.out")"
    echo "$m" | sssh 'cat' >"$TD/m2.out" 2>"$TD/m2.err"
    assertEquals "ssh 2 exit status" 0 $?
    assertEquals "marker through the session's stdin and back" "$m" "$(cat "$TD/m2.out")"
    cap_stop
    # ssh encrypts the session itself, but its version banners
    # ("SSH-2.0-OpenSSH_...") and the key-exchange algorithm names are plaintext
    # in the SSH protocol: under the seal none of it may be on the wire
    cap_check --preface "$PREFACE_HEX" --marker "$m" --marker "SSH-2.0-" \
        --marker "curve25519-sha256" --min-conns 2
    assertEquals "capture: preface on every connection, no plaintext" 0 $?
}

. shunit2
