#!/bin/bash
# Command-line conventions of both tools (issue 16): -h/--help on every
# command prints usage on stdout and exits 0; an unknown option prints
# usage on stderr and exits 2; --version names the version, the build and
# the wire protocol, and the shim carries the same build; "--" ends the
# options; a missing policy says how to give one; a key file others may
# read is warned about at start by the launcher and, once per program
# (not per child), by the shim.
. "$(dirname "$0")/lib.sh"

# usage_on LABEL STATUS STREAM CMD...: CMD exits STATUS with its usage on
# STREAM (out or err) and nothing on the other one.
usage_on() {
    local label=$1 want=$2 on=$3 off; shift 3
    [ "$on" = out ] && off=err || off=out
    "$@" >"$TD/u.out" 2>"$TD/u.err"
    assertEquals "$label: exit status" "$want" $?
    assertFileContains "$label: usage on std$on" "$TD/u.$on" "usage: "
    assertEquals "$label: nothing on std$off" "" "$(cat "$TD/u.$off")"
}
help_ok() { local l=$1; shift; usage_on "$l" 0 out "$@"; }
bad_option() { local l=$1; shift; usage_on "$l" 2 err "$@"; }

test_help_everywhere() {
    local h sub
    for h in -h --help; do
        help_ok "sockseal $h" "$LAUNCHER" "$h"
        help_ok "sockseal doctor $h" "$LAUNCHER" doctor "$h"
        help_ok "sockseal explain $h" "$LAUNCHER" explain "$h"
        help_ok "sockseal stats $h" "$LAUNCHER" stats "$h"
        help_ok "sockseal systemd $h" "$LAUNCHER" systemd "$h"
        help_ok "keytool $h" "$KEYTOOL" "$h"
        for sub in gen show identity pub check rotate; do
            help_ok "keytool $sub $h" "$KEYTOOL" "$sub" "$h"
            assertFileContains "keytool $sub $h: its own usage" "$TD/u.out" \
                "^usage: sockseal-keytool $sub "
        done
    done
    help_ok "sockseal help" "$LAUNCHER" help
    help_ok "keytool help" "$KEYTOOL" help
}

test_unknown_options() {
    local sub
    bad_option "sockseal --bogus" "$LAUNCHER" --bogus true
    bad_option "sockseal -x" "$LAUNCHER" -x true
    bad_option "sockseal explain --bogus" "$LAUNCHER" explain --bogus connect 127.0.0.1:1
    bad_option "sockseal doctor --bogus" "$LAUNCHER" doctor --bogus
    bad_option "sockseal stats --bogus" "$LAUNCHER" stats --bogus
    bad_option "sockseal systemd --bogus" "$LAUNCHER" systemd --bogus
    bad_option "keytool --bogus" "$KEYTOOL" --bogus
    for sub in gen show identity pub check rotate; do
        bad_option "keytool $sub --bogus" "$KEYTOOL" "$sub" --bogus "$TD/x"
    done
    assertFalse "no file made for an unknown option" "[ -e '$TD/x' ]"
}

test_version() {
    local want build
    want=$(sed -n 's/^VERSION *:= *//p' "$ROOT/Makefile")
    assertNotEquals "Makefile has a VERSION" "" "$want"
    "$LAUNCHER" --version >"$TD/v1.out" 2>"$TD/v1.err"
    assertEquals "sockseal --version: exit status" 0 $?
    "$KEYTOOL" --version >"$TD/v2.out" 2>"$TD/v2.err"
    assertEquals "keytool --version: exit status" 0 $?
    assertFileContains "sockseal --version" "$TD/v1.out" \
        "^sockseal $want \\(build [^ ]+, wire protocol 1\\)\$"
    assertFileContains "keytool --version" "$TD/v2.out" \
        "^sockseal-keytool $want \\(build [^ ]+, wire protocol 1\\)\$"
    build=$(sed -n 's/.*(build \([^,]*\),.*/\1/p' "$TD/v1.out")
    assertEquals "one build for both tools" "$build" \
        "$(sed -n 's/.*(build \([^,]*\),.*/\1/p' "$TD/v2.out")"
    grep -a -q -F "sockseal $want (build $build)" "$B/libsockseal.so"
    assertEquals "the shim carries the same build" 0 $?
    # the shim says it when asked for debug logs
    : >"$POLICY"
    env ${SAN_RT:+LD_PRELOAD="$SAN_RT"} "${SAN_ENV[@]}" SOCKSEAL_LOG=debug \
        "$LAUNCHER" -f "$POLICY" -- true 2>"$TD/dbg.err"
    assertFileContains "the shim names its build" "$TD/dbg.err" \
        "sockseal $want \\(build $build\\)"
}

test_help_is_not_a_program_name() {
    mkdir -p "$TD/bin"
    printf '#!/bin/sh\necho the-help-program-ran\n' >"$TD/bin/help"
    chmod +x "$TD/bin/help"
    : >"$POLICY"
    PATH=$TD/bin:$PATH SOCKSEAL_POLICY=$POLICY "$LAUNCHER" help >"$TD/p1.out" 2>&1
    assertFileNotContains "sockseal help is the usage" "$TD/p1.out" the-help-program-ran
    env ${SAN_RT:+LD_PRELOAD="$SAN_RT"} "${SAN_ENV[@]}" PATH="$TD/bin:$PATH" \
        "$LAUNCHER" -f "$POLICY" -- help >"$TD/p2.out" 2>&1
    assertFileContains "sockseal -- help runs it" "$TD/p2.out" the-help-program-ran
}

test_double_dash_ends_options() {
    (cd "$TD" && "$KEYTOOL" gen -- -dash.key >"$TD/g.out" 2>&1)
    assertEquals "gen -- -dash.key: exit status" 0 $?
    assertTrue "a key file named -dash.key" "[ -s '$TD/-dash.key' ]"
    "$KEYTOOL" show -- "$TD/-dash.key" >"$TD/s.out" 2>&1
    assertEquals "show -- FILE: exit status" 0 $?
}

test_missing_policy_says_how() {
    "$LAUNCHER" -f "$TD/no-such-policy" -- true >"$TD/m.out" 2>"$TD/m.err"
    assertEquals "exit status" 1 $?
    assertFileContains "prefixed, names the file" "$TD/m.err" "^sockseal: no policy: .*no-such-policy"
    assertFileContains "says how to give one" "$TD/m.err" "-f POLICY or SOCKSEAL_POLICY"
}

test_exposed_key_warned_at_start() {
    local key pyc
    key=$(mkkey k) || { fail "no key"; return 0; }
    printf 'key k %s\nconnect 127.0.0.1:9 key=k\n' "$key" >"$POLICY"
    pyc='import socket; socket.socket().close()'
    # a shell whose two children make sockets: all run the shim
    run_tree() {
        env ${SAN_RT:+LD_PRELOAD="$SAN_RT"} "${SAN_ENV[@]}" \
            "$LAUNCHER" -f "$POLICY" -- /bin/sh -c \
            "'$PY' -c '$pyc' && '$PY' -c '$pyc' && echo tree-ran" >"$TD/w.out" 2>"$TD/w.err"
    }
    chmod 640 "$key"
    run_tree
    assertFileContains "the programs ran" "$TD/w.out" tree-ran
    assertFileContains "the launcher warns" "$TD/w.err" \
        "^sockseal: $POLICY:1: warning: key k: $key is readable by group \(mode 0640\); chmod 600 it\$"
    assertEquals "the shim warns once for the whole tree" 1 \
        "$(grep -c "warn: .*$POLICY:1: key k: $key is readable by group (mode 0640)" "$TD/w.err")"
    # an exec chain (a wrapper's `exec prog`) is one process: said once
    env ${SAN_RT:+LD_PRELOAD="$SAN_RT"} "${SAN_ENV[@]}" \
        "$LAUNCHER" -f "$POLICY" -- /bin/sh -c \
        "exec /bin/sh -c \"exec '$PY' -c '$pyc; print(\\\"chain-ran\\\")'\"" >"$TD/x.out" 2>"$TD/x.err"
    assertFileContains "the chain ran" "$TD/x.out" chain-ran
    assertEquals "the shim warns once for the exec chain" 1 \
        "$(grep -c "warn: .*$POLICY:1: key k: $key is readable by group (mode 0640)" "$TD/x.err")"
    chmod 604 "$key"
    run_tree
    assertFileContains "others: said so" "$TD/w.err" "readable by others \(mode 0604\)"
    chmod 600 "$key"
    run_tree
    assertFileContains "the programs ran (0600)" "$TD/w.out" tree-ran
    assertFileNotContains "mode 0600: nothing said" "$TD/w.err" "readable by"
}

. shunit2
