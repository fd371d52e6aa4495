#!/bin/bash
# sockseal systemd UNIT (issue 16): the drop-in it prints passes
# systemd-analyze verify on a test unit (with and without --credential) and
# on Debian's hardened redis-server.service, and a broken one is reported
# (control); the environment it sets seals the unit's ExecStart run as
# systemd would run it (env -i, the credentials copied into a
# CREDENTIALS_DIRECTORY): a sealed client's data comes back byte for byte,
# the capture shows the preface and no plaintext, and the same server
# without that environment fails the client (control); --install/--remove
# under SOCKSEAL_SYSTEMD_DIR (files, mode, idempotence, nothing to remove);
# credential warnings; bad unit names, a bad policy (FILE:LINE, exit 1),
# usage errors (exit 2), --help (exit 0).  Debian's redis-server under its
# unit's SystemCallFilter= (tests/programs/syscall_filter.py, seccomp, with
# no_new_privs) and the drop-in's environment serves sealed clients; with
# memfd_create denied too it is killed at the first sealed connection and
# nothing leaks (control).
#
# systemd is not PID 1 here: nothing is started by systemd itself.
. "$(dirname "$0")/lib.sh"

UNITS=
UNIT=

# The launcher run as a user would, with LD_PRELOAD holding only the
# sanitizer runtime (if any), as a sanitizer build expects.
PRE_ENV=(-u LD_PRELOAD)
[ -n "$SAN_RT" ] && PRE_ENV=(LD_PRELOAD="$SAN_RT")
launch() { timeout -k 5 "$TMO" env "${PRE_ENV[@]}" "${SAN_ENV[@]}" "$LAUNCHER" "$@"; }

# mkunit PORT: $TD/units/test.service, a socat echo server on PORT.
mkunit() {
    UNITS=$TD/units
    UNIT=$UNITS/test.service
    mkdir -p "$UNITS/test.service.d"
    cat >"$UNIT" <<EOF
[Unit]
Description=sockseal test echo server

[Service]
ExecStart=/usr/bin/socat -t 30 TCP-LISTEN:$1,bind=127.0.0.1,reuseaddr,fork EXEC:/bin/cat
EOF
}

# dropin ARGS...: the drop-in for test.service into its .d directory.
dropin() {
    launch systemd test -f "$POLICY" "$@" \
        >"$UNITS/test.service.d/sockseal.conf" 2>"$TD/gen.err"
}

# verify UNITFILE: systemd-analyze verify with only $UNITS on the unit path
# (its output in $TD/verify.out); returns its status.
verify() {
    SYSTEMD_UNIT_PATH=$UNITS: timeout -k 5 "$TMO" systemd-analyze verify "$1" \
        >"$TD/verify.out" 2>&1
}

# server_env DROPIN: SRV_ENV, the variables DROPIN sets (Environment=), and
# its credentials (LoadCredential=) copied into $TD/creds, mode 0400, with
# CREDENTIALS_DIRECTORY pointing there, as systemd does.  Under a sanitizer
# build the runtime goes first in LD_PRELOAD.
server_env() {
    local line v name path
    SRV_ENV=(PATH=/usr/bin:/bin)
    while IFS= read -r line; do
        v=${line//%%/%}
        case "$v" in
            Environment=LD_PRELOAD=*)
                SRV_ENV+=("LD_PRELOAD=${SAN_RT:+$SAN_RT }${v#Environment=LD_PRELOAD=}") ;;
            Environment=*) SRV_ENV+=("${v#Environment=}") ;;
            LoadCredential=*)
                v=${v#LoadCredential=}
                name=${v%%:*} path=${v#*:}
                mkdir -p "$TD/creds"
                cp "$path" "$TD/creds/$name" && chmod 400 "$TD/creds/$name"
                ;;
        esac
    done <"$1"
    [ -d "$TD/creds" ] && SRV_ENV+=(CREDENTIALS_DIRECTORY="$TD/creds")
    SRV_ENV+=("${SAN_ENV[@]}")
    return 0
}

# start_unit [ENV...]: the unit's ExecStart under env -i ENV..., as srv.
start_unit() {
    local -a cmd
    read -ra cmd <<<"$(sed -n 's/^ExecStart=//p' "$UNIT")"
    bg srv plain env -i "$@" "${cmd[@]}"
}

# echo_through PORT CLIENT-POLICY: a sealed socat client sends 1 MB with a
# marker to PORT under a capture; sets M; $TD/in, $TD/out; client status.
echo_through() {
    local rc
    M=$(newmarker)
    mkmarked "$TD/in" 1000000 "$M"
    cap_start "$1" || { fail "tcpdump did not start"; return 1; }
    launch -f "$2" -- socat -t 30 "TCP:127.0.0.1:$1" STDIO \
        <"$TD/in" >"$TD/out" 2>"$TD/cli.err"
    rc=$?
    cap_stop
    return $rc
}

# client_policy PORT KEY: $TD/client.policy, a connect rule with KEY.
client_policy() {
    printf 'key k %s\nconnect 127.0.0.1:%s key=k\n' "$2" "$1" >"$TD/client.policy"
}

test_dropin_verifies() {
    local port key
    port=$(free_port)
    key=$(mkkey k) || { fail "no key"; return 0; }
    mkunit "$port"
    printf 'key k %s\naccept 127.0.0.1:%s key=k\n' "$key" "$port" >"$POLICY"
    dropin
    assertEquals "drop-in generated" 0 $?
    verify "$UNIT"
    assertEquals "verify: exit status" 0 $?
    assertFileNotContains "verify: nothing about the drop-in" "$TD/verify.out" "test.service.d|sockseal.conf"
    assertFileContains "the shim, absolute" "$UNITS/test.service.d/sockseal.conf" \
        "^Environment=LD_PRELOAD=$(realpath "$B/libsockseal.so")\$"
    assertFileContains "the policy, absolute" "$UNITS/test.service.d/sockseal.conf" \
        "^Environment=SOCKSEAL_POLICY=$POLICY\$"
    assertFileContains "a header saying how to remove it" "$UNITS/test.service.d/sockseal.conf" \
        "^# Remove with: sockseal systemd test.service --remove"

    printf 'key k ${CREDENTIALS_DIRECTORY}/app.key\naccept 127.0.0.1:%s key=k\n' "$port" >"$POLICY"
    dropin --credential "app.key=$key"
    assertEquals "drop-in with a credential generated" 0 $?
    assertFileContains "LoadCredential=" "$UNITS/test.service.d/sockseal.conf" \
        "^LoadCredential=app.key:$key\$"
    assertEquals "no warning for a used credential" "" "$(cat "$TD/gen.err")"
    verify "$UNIT"
    assertEquals "verify with a credential: exit status" 0 $?
    assertFileNotContains "verify with a credential: nothing about the drop-in" \
        "$TD/verify.out" "test.service.d|sockseal.conf"

    # control: systemd-analyze does read the drop-in
    echo "ExecPaths=not/absolute" >>"$UNITS/test.service.d/sockseal.conf"
    echo "Bogus=1" >>"$UNITS/test.service.d/sockseal.conf"
    verify "$UNIT"
    assertFileContains "control: a bad path in the drop-in is reported" "$TD/verify.out" \
        "sockseal.conf:[0-9]+: ExecPaths= path is not absolute"
    assertFileContains "control: an unknown key in the drop-in is reported" "$TD/verify.out" \
        "sockseal.conf:[0-9]+: Unknown key 'Bogus'"
}

# The README's worked example on Debian's own redis-server.service.
test_redis_unit_verifies() {
    local key
    [ -f /lib/systemd/system/redis-server.service ] ||
        { fail "no /lib/systemd/system/redis-server.service (install-deps: redis-server)"; return 0; }
    UNITS=$TD/units
    mkdir -p "$UNITS/redis-server.service.d"
    cp /lib/systemd/system/redis-server.service "$UNITS/"
    key=$(mkkey app) || { fail "no key"; return 0; }
    printf 'key app ${CREDENTIALS_DIRECTORY}/app.key\naccept *:6379 key=app\n' >"$POLICY"
    launch systemd redis-server -f "$POLICY" --credential "app.key=$key" \
        >"$UNITS/redis-server.service.d/sockseal.conf" 2>"$TD/gen.err"
    assertEquals "drop-in generated" 0 $?
    verify "$UNITS/redis-server.service"
    assertEquals "verify: exit status" 0 $?
    assertFileNotContains "verify: nothing about the drop-in" "$TD/verify.out" "sockseal.conf"
    assertFileContains "the unit has NoExecPaths= (why the drop-in has ExecPaths=)" \
        "$UNITS/redis-server.service" "^NoExecPaths=/"
    assertFileContains "ExecPaths= names the shim" "$UNITS/redis-server.service.d/sockseal.conf" \
        "^ExecPaths=$(realpath "$B/libsockseal.so")\$"
}

# seal_case CRED: the unit's command under the drop-in's environment is a
# sealed server; CRED=1 passes the key as a credential.
seal_case() {
    local port key
    port=$(free_port)
    key=$(mkkey k) || { fail "no key"; return 0; }
    mkunit "$port"
    if [ "$1" = 1 ]; then
        # a '%' in a path is written as systemd reads it: %%
        mkdir -p "$TD/100%"
        POLICY=$TD/100%/policy
        printf 'key k ${CREDENTIALS_DIRECTORY}/k.key\naccept 127.0.0.1:%s key=k\n' "$port" >"$POLICY"
        dropin --credential "k.key=$key"
        assertFileHasString "a '%' doubled" "$UNITS/test.service.d/sockseal.conf" \
            "Environment=SOCKSEAL_POLICY=$TD/100%%/policy"
    else
        printf 'key k %s\naccept 127.0.0.1:%s key=k\n' "$key" "$port" >"$POLICY"
        dropin
    fi
    assertEquals "drop-in generated" 0 $?
    verify "$UNIT"
    assertEquals "verify: exit status" 0 $?
    assertFileNotContains "verify: nothing about the drop-in" "$TD/verify.out" "test.service.d|sockseal.conf"
    server_env "$UNITS/test.service.d/sockseal.conf"
    if [ "$1" = 1 ]; then
        assertTrue "the credential was copied" "[ -s '$TD/creds/k.key' ]"
    fi
    client_policy "$port" "$key"
    start_unit "${SRV_ENV[@]}"
    wait_listen "$port" srv || { fail "the unit's server did not listen"; return 0; }
    echo_through "$port" "$TD/client.policy"
    assertEquals "sealed client exit status" 0 $?
    assertSameFile "echo through the unit's server" "$TD/in" "$TD/out"
    cap_check --preface "$PREFACE_HEX" --marker "$M" --min-bytes 2000000
    assertEquals "sealed on the wire" 0 $?
}

test_dropin_environment_seals_the_unit() { seal_case 0; }
test_dropin_environment_with_credential_seals_the_unit() { seal_case 1; }

# Control: the same unit without the drop-in's environment is a plain echo
# server, and the sealed client fails against it, sending only its handshake.
test_control_unit_without_dropin_fails_client() {
    local port key
    port=$(free_port)
    key=$(mkkey k) || { fail "no key"; return 0; }
    mkunit "$port"
    client_policy "$port" "$key"
    start_unit PATH=/usr/bin:/bin
    wait_listen "$port" srv || { fail "the unit's server did not listen"; return 0; }
    echo_through "$port" "$TD/client.policy"
    assertNotEquals "sealed client against the plain server fails" 0 $?
    assertEquals "nothing came back" 0 "$(fsize "$TD/out")"
    cap_check --marker "$M"
    assertEquals "no plaintext on the wire either" 0 $?
}

# unit_filter UNITFILE: FILTER, the syscall_filter.py arguments for the
# unit's SystemCallFilter= lines (a list allows, a ~list denies).
unit_filter() {
    local v w
    FILTER=()
    while IFS= read -r v; do
        if [ "${v:0:1}" = "~" ]; then
            for w in ${v:1}; do FILTER+=(--deny "$w"); done
        else
            for w in $v; do FILTER+=(--allow "$w"); done
        fi
    done < <(sed -n 's/^SystemCallFilter=//p' "$1")
}

# redis_case DENY...: Debian's redis-server under its unit's system call
# filter (SystemCallFilter=, with no_new_privs) and the environment of the
# drop-in for the README's worked example (its key as a credential);
# DENY... more filter arguments.  Sets RC_SET, RC_GET: the sealed clients'
# statuses.
redis_case() {
    local port key unit=/lib/systemd/system/redis-server.service
    [ -f "$unit" ] || { fail "no $unit (install-deps: redis-server)"; return 1; }
    "$PY" -c 'import seccomp' 2>/dev/null ||
        { fail "no python3-seccomp (install-deps)"; return 1; }
    san_can_run redis-server --version || { startSkipping; return 1; }
    unit_filter "$unit"
    assertNotEquals "the unit has a SystemCallFilter=" 0 "${#FILTER[@]}"
    assertFileContains "the unit has NoNewPrivileges=" "$unit" "^NoNewPrivileges=true"
    port=$(free_port)
    key=$(mkkey app) || { fail "no key"; return 1; }
    printf 'key app ${CREDENTIALS_DIRECTORY}/app.key\naccept 127.0.0.1:%s key=app\n' "$port" >"$POLICY"
    launch systemd redis-server -f "$POLICY" --credential "app.key=$key" \
        >"$TD/redis-dropin.conf" 2>"$TD/gen.err"
    assertEquals "drop-in generated" 0 $?
    server_env "$TD/redis-dropin.conf"
    client_policy "$port" "$key"
    bg srv plain "$PY" "$PROGS/syscall_filter.py" "${FILTER[@]}" "$@" -- \
        env -i "${SRV_ENV[@]}" SOCKSEAL_LOG=info /usr/bin/redis-server \
        --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$TD"
    wait_listen "$port" srv || { fail "redis-server did not listen"; return 1; }
    M=$(newmarker)
    { for _ in 1 2 3 4; do echo "$M"; head -c 15000 /dev/urandom | base64 -w 76; done; } >"$TD/val"
    { cat "$TD/val"; echo; } >"$TD/want"
    cap_start "$port" || { fail "tcpdump did not start"; return 1; }
    launch -f "$TD/client.policy" -- redis-cli -p "$port" -x set big \
        <"$TD/val" >"$TD/set.out" 2>"$TD/cli.err"
    RC_SET=$?
    launch -f "$TD/client.policy" -- redis-cli -p "$port" --raw get big \
        >"$TD/out" 2>>"$TD/cli.err"
    RC_GET=$?
    cap_stop
    return 0
}

test_redis_under_its_units_syscall_filter() {
    redis_case || return 0
    assertEquals "sealed SET: exit status" 0 "$RC_SET"
    assertFileContains "sealed SET: OK" "$TD/set.out" "^OK\$"
    assertEquals "sealed GET: exit status" 0 "$RC_GET"
    assertSameFile "the value back through sealed redis" "$TD/want" "$TD/out"
    assertTrue "redis-server still runs" "running srv"
    assertFileContains "the shim sealed it (its log)" "$TD/srv.err" "sealed connection from 127.0.0.1:.*key app"
    cap_check --preface "$PREFACE_HEX" --marker "$M" --min-conns 2 --min-bytes 80000
    assertEquals "sealed on the wire" 0 $?
}

# Control, and the shim failing closed: with a call it needs denied
# (memfd_create, for a connection's state), the filter kills redis-server
# at its first sealed connection (SIGSYS), and nothing is sent in the clear.
test_redis_with_a_denied_call_fails_closed() {
    redis_case --deny memfd_create || return 0
    assertNotEquals "sealed SET fails" 0 "$RC_SET"
    assertEquals "nothing came back" 0 "$(fsize "$TD/out")"
    wait_bg srv
    assertEquals "redis-server killed by SIGSYS (timeout: 128+31)" 159 $?
    cap_check --marker "$M"
    assertEquals "no plaintext on the wire" 0 $?
}

test_install_and_remove() {
    local key d f out
    key=$(mkkey k) || { fail "no key"; return 0; }
    printf 'key k %s\naccept 127.0.0.1:9 key=k\n' "$key" >"$POLICY"
    mkdir -p "$TD/etc"
    d=$TD/etc/test.service.d
    f=$d/sockseal.conf
    export SOCKSEAL_SYSTEMD_DIR=$TD/etc
    launch systemd test -f "$POLICY" >"$TD/print.out" 2>&1
    launch systemd test -f "$POLICY" --install >"$TD/i1.out" 2>&1
    assertEquals "--install: exit status" 0 $?
    assertTrue "--install: the file is there" "[ -f '$f' ]"
    assertEquals "--install: mode 0644" 644 "$(stat -c %a "$f" 2>/dev/null)"
    assertEquals "--install: what it prints is what it installs" "$(sha "$TD/print.out")" "$(sha "$f")"
    assertFileContains "--install: says what it wrote" "$TD/i1.out" "^wrote $f\$"
    assertFileContains "--install: says what to do next" "$TD/i1.out" "systemctl restart test.service"
    if [ ! -d /run/systemd/system ]; then
        assertFileContains "--install: no daemon-reload without systemd" "$TD/i1.out" "systemd is not running here"
    fi
    assertEquals "--install: no temporary file left" "sockseal.conf" "$(ls -A "$d")"
    out=$(stat -c %i "$f")
    launch systemd test -f "$POLICY" --install >"$TD/i2.out" 2>&1
    assertEquals "--install again: exit status" 0 $?
    assertFileContains "--install again: nothing to do" "$TD/i2.out" "up to date"
    assertEquals "--install again: the file untouched" "$out" "$(stat -c %i "$f")"
    printf 'key k %s\naccept 127.0.0.1:10 key=k\n' "$key" >"$TD/policy2"
    launch systemd test -f "$TD/policy2" --install >"$TD/i3.out" 2>&1
    assertEquals "--install of a change: exit status" 0 $?
    assertFileContains "--install of a change: the new policy" "$f" "^Environment=SOCKSEAL_POLICY=$TD/policy2\$"
    assertEquals "--install of a change: one file" "sockseal.conf" "$(ls -A "$d")"
    # another drop-in in the same directory stays, and so does the directory
    echo "[Service]" >"$d/other.conf"
    launch systemd test --remove >"$TD/r1.out" 2>&1
    assertEquals "--remove: exit status" 0 $?
    assertFalse "--remove: the file is gone" "[ -e '$f' ]"
    assertTrue "--remove: another drop-in stays" "[ -f '$d/other.conf' ]"
    assertFileContains "--remove: says what it removed" "$TD/r1.out" "^removed $f\$"
    rm "$d/other.conf"
    launch systemd test -f "$POLICY" --install >/dev/null 2>&1
    launch systemd test.service --remove >"$TD/r2.out" 2>&1
    assertEquals "--remove (test.service): exit status" 0 $?
    assertFalse "--remove: the empty directory is gone" "[ -e '$d' ]"
    assertFileContains "--remove: says it removed the directory" "$TD/r2.out" "^removed $d "
    launch systemd test --remove >"$TD/r3.out" 2>&1
    assertEquals "--remove with nothing installed: exit status 0" 0 $?
    assertFileContains "--remove with nothing installed: says so" "$TD/r3.out" "^nothing to remove: $f does not exist"
    unset SOCKSEAL_SYSTEMD_DIR
}

test_credential_warnings() {
    local key other
    key=$(mkkey k) || { fail "no key"; return 0; }
    other=$(mkkey other) || { fail "no key"; return 0; }
    mkdir -p "$TD/units" && UNITS=$TD/units && mkdir -p "$UNITS/test.service.d"
    printf 'key k ${CREDENTIALS_DIRECTORY}/k.key\nconnect 127.0.0.1:9 key=k\n' >"$POLICY"
    dropin --credential "k.key=$key" --credential "extra=$other"
    assertEquals "an unused credential is a warning, not an error" 0 $?
    assertFileContains "an unused credential is named" "$TD/gen.err" \
        "warning: credential extra \($other\) is not used"
    assertFileNotContains "the used one is not" "$TD/gen.err" "credential k.key"
    printf 'key k %s\nconnect 127.0.0.1:9 key=k\n' "$key" >"$POLICY"
    dropin --credential "k.key=$key"
    assertEquals "a direct read is a warning, not an error" 0 $?
    assertFileContains "a key read directly that a credential passes" "$TD/gen.err" \
        "warning: the policy reads $key directly, which credential k.key passes too"
    # no credential for a policy that needs one: the error says how
    printf 'key k ${CREDENTIALS_DIRECTORY}/k.key\nconnect 127.0.0.1:9 key=k\n' >"$POLICY"
    dropin
    assertEquals "no credential for \${CREDENTIALS_DIRECTORY}: exit status" 1 $?
    assertFileContains "it names FILE:LINE" "$TD/gen.err" "^$POLICY:1: key k: environment variable CREDENTIALS_DIRECTORY is not set"
    assertFileContains "it says how" "$TD/gen.err" "--credential NAME=PATH"
    launch systemd test -f "$POLICY" --credential "k.key=$TD/missing" >/dev/null 2>"$TD/m.err"
    assertEquals "a missing credential file: exit status" 1 $?
    assertFileContains "a missing credential file is named" "$TD/m.err" "credential k.key: $TD/missing"
    # no temporary view left behind
    assertEquals "no view left" "" "$(find "${TMPDIR:-/tmp}" -maxdepth 1 -name 'sockseal-creds.*' -newer "$POLICY" 2>/dev/null)"
}

test_bad_unit_names() {
    local u
    : >"$POLICY"
    for u in a/b ../etc/passwd 'x y' 'x..y' '.service' 'a@b@c' 'semi;colon' foo.socket ''; do
        launch systemd "$u" -f "$POLICY" >"$TD/u.out" 2>"$TD/u.err"
        assertEquals "unit '$u': exit status" 2 $?
        assertFileContains "unit '$u': said why" "$TD/u.err" "bad unit name"
        assertEquals "unit '$u': nothing printed" "" "$(cat "$TD/u.out")"
    done
    for u in ok redis-server 'getty@.service' 'getty@tty1' 'a:b_c.d\x2d'; do
        launch systemd "$u" -f "$POLICY" >"$TD/u.out" 2>"$TD/u.err"
        assertEquals "unit '$u': accepted" 0 $?
    done
    launch systemd redis-server -f "$POLICY" >"$TD/u.out" 2>&1
    assertFileContains ".service added" "$TD/u.out" "for redis-server.service:"
}

test_bad_policy() {
    printf 'key k %s/nope.key\nconnect 127.0.0.1:9 key=k\n' "$TD" >"$POLICY"
    launch systemd test -f "$POLICY" >"$TD/p.out" 2>"$TD/p.err"
    assertEquals "missing key: exit status" 1 $?
    assertFileContains "missing key: FILE:LINE" "$TD/p.err" "^$POLICY:1: "
    assertEquals "missing key: nothing printed" "" "$(cat "$TD/p.out")"
    printf 'key k %s\nconnect 127.0.0.1:9 key=k\nbogus\n' "$(mkkey k)" >"$POLICY"
    mkdir -p "$TD/etc"
    SOCKSEAL_SYSTEMD_DIR=$TD/etc launch systemd test -f "$POLICY" --install >"$TD/p.out" 2>"$TD/p.err"
    assertEquals "bad line, --install: exit status" 1 $?
    assertFileContains "bad line: FILE:LINE" "$TD/p.err" "^$POLICY:3: "
    assertFalse "bad line: nothing installed" "[ -e '$TD/etc/test.service.d' ]"
    SOCKSEAL_POLICY=$TD/none launch systemd test >"$TD/p.out" 2>"$TD/p.err"
    assertEquals "no policy: exit status" 1 $?
    assertFileContains "no policy: says how to give one" "$TD/p.err" "^sockseal: no policy: $TD/none"
}

test_usage() {
    local a
    : >"$POLICY"
    for a in -h --help; do
        launch systemd "$a" >"$TD/h.out" 2>"$TD/h.err"
        assertEquals "systemd $a: exit status" 0 $?
        assertFileContains "systemd $a: usage on stdout" "$TD/h.out" "^usage: sockseal systemd UNIT"
        assertEquals "systemd $a: nothing on stderr" "" "$(cat "$TD/h.err")"
    done
    launch --help >"$TD/h.out" 2>&1
    assertFileContains "in the launcher's usage" "$TD/h.out" "sockseal systemd UNIT"
    for a in "--bogus x" "x -z" "" "x y" "x --install --remove" "x --credential" \
        "x --credential novalue" "x --credential =/etc/hostname" "x --credential a/b=/etc/hostname"; do
        # shellcheck disable=SC2086
        launch systemd $a -f "$POLICY" >"$TD/h.out" 2>"$TD/h.err"
        assertEquals "systemd $a: exit status" 2 $?
        assertEquals "systemd $a: nothing on stdout" "" "$(cat "$TD/h.out")"
    done
    launch systemd --bogus x >"$TD/h.out" 2>"$TD/h.err"
    assertFileContains "unknown option: usage on stderr" "$TD/h.err" "^usage: sockseal systemd UNIT"
}

. shunit2
