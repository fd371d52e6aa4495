#!/bin/bash
# Key tool (gen/show/check), start-up refusal of bad policies, pass-through
# of unmatched connections, the launcher.
. "$(dirname "$0")/lib.sh"

test_gen_makes_0600_base64_key() {
    "$KEYTOOL" gen "$TD/a.key" >"$TD/gen.out" 2>&1
    assertEquals "gen exit status" 0 $?
    assertEquals "mode" 600 "$(stat -c %a "$TD/a.key")"
    assertEquals "one line of 44 characters + newline" 45 "$(fsize "$TD/a.key")"
    assertEquals "decodes to 32 bytes" 32 "$(base64 -d "$TD/a.key" | wc -c)"
    "$KEYTOOL" gen "$TD/b.key" >/dev/null 2>&1
    assertNotEquals "two keys differ" "$(cat "$TD/a.key")" "$(cat "$TD/b.key")"
    assertFileLacksString "gen does not print the key" "$TD/gen.out" "$(cut -c1-20 "$TD/a.key")"
}

test_gen_refuses_overwrite() {
    "$KEYTOOL" gen "$TD/a.key" >/dev/null 2>&1
    local before
    before=$(sha "$TD/a.key")
    "$KEYTOOL" gen "$TD/a.key" >"$TD/gen2.out" 2>&1
    assertNotEquals "second gen fails" 0 $?
    assertEquals "key unchanged" "$before" "$(sha "$TD/a.key")"
    : >"$TD/empty.key"
    "$KEYTOOL" gen "$TD/empty.key" >/dev/null 2>&1
    assertNotEquals "gen over an existing empty file fails" 0 $?
}

test_show_never_prints_the_key() {
    "$KEYTOOL" gen "$TD/a.key" >/dev/null 2>&1
    "$KEYTOOL" show "$TD/a.key" >"$TD/show.out" 2>&1
    assertEquals "show exit status" 0 $?
    assertTrue "show prints something" "[ -s '$TD/show.out' ]"
    local b64 hex
    b64=$(tr -d '\n' <"$TD/a.key")
    hex=$(base64 -d "$TD/a.key" | od -An -tx1 | tr -d ' \n')
    hex=${hex:0:16}
    assertFileLacksString "no base64 key" "$TD/show.out" "${b64:0:16}"
    assertFileNotContains "no hex key (either case)" "$TD/show.out" "($hex|${hex^^})"
    # same key -> same fingerprint; works on a wg-genpsk style key too
    "$KEYTOOL" show "$TD/a.key" >"$TD/show2.out" 2>&1
    assertEquals "fingerprint is stable" "$(cat "$TD/show.out")" "$(cat "$TD/show2.out")"
    rawkey raw >/dev/null
    "$KEYTOOL" show "$TD/raw.key" >/dev/null 2>&1
    assertEquals "show accepts a 'head -c32 /dev/urandom | base64' key" 0 $?
}

test_check_good_policy_says_what_it_checked_in_words_the_parser_takes() {
    mkkey a >/dev/null; mkkey b >/dev/null
    write_policy <<EOF
# comment
key a $TD/a.key
key b $TD/b.key
connect 127.0.0.1:5000-5010 key=a
accept  *:6000 key=a,b cipher=aesgcm mode=strict timeout=2000
accept  [::1]:7000 key=b mode=permissive
connect 10.0.0.0/8:* plain
EOF
    "$KEYTOOL" check "$POLICY" >"$TD/check.out" 2>"$TD/check.err"
    assertEquals "exit status" 0 $?
    assertFileContains "success says what was checked" "$TD/check.out" \
        "^$POLICY: ok: 4 rules \(3 sealing, 1 plain\), 2 keys, 0 identities, 0 peers, 3 files read\$"
    assertFileNotContains "no cipher=any" "$TD/check.out" "cipher=any"
    assertEquals "nothing on stderr" "" "$(cat "$TD/check.err")"
    # The rule lines, less their fingerprints and FILE:LINE, are a policy
    # the parser takes, and check shows the same rules for it.
    { sed -n '2,3p' "$POLICY"
      grep -v ": ok: " "$TD/check.out" | sed 's/(SHA256:[^)]*)//g; s/ [^ ]*:[0-9]*$//'
    } >"$TD/again.policy"
    "$KEYTOOL" check "$TD/again.policy" >"$TD/again.out" 2>&1
    assertEquals "check's rule lines parse again ($(cat "$TD/again.out"))" 0 $?
    assertEquals "the same rules" \
        "$(grep -v ": ok: " "$TD/check.out" | sed 's/ [^ ]*:[0-9]*$//')" \
        "$(grep -v ": ok: " "$TD/again.out" | sed 's/ [^ ]*:[0-9]*$//')"
}

test_check_reports_dead_rules() {
    mkkey a >/dev/null
    # a sealing rule behind a plain one: plaintext where sealing was meant
    write_policy <<EOF
key a $TD/a.key
accept *:* plain
accept 127.0.0.1:6000 key=a
EOF
    "$KEYTOOL" check "$POLICY" >"$TD/d1.out" 2>"$TD/d1.err"
    assertEquals "sealing rule hidden by a plain one: exit status" 1 $?
    assertFileContains "names both rules" "$TD/d1.err" \
        "^$POLICY:3: error: this rule never matches: .accept \*:\* plain' at $POLICY:2"
    assertFileNotContains "no success line" "$TD/d1.out" ": ok: "
    # a duplicate and a shadowed rule: warnings
    write_policy <<EOF
key a $TD/a.key
connect 10.0.0.0/8:* key=a
connect 10.1.0.0/16:22 key=a
connect 10.0.0.0/8:* key=a cipher=aesgcm
connect [::1]:5 plain
connect 127.0.0.1:5 key=a
EOF
    "$KEYTOOL" check "$POLICY" >"$TD/d2.out" 2>"$TD/d2.err"
    assertEquals "duplicate and shadowed: exit status" 0 $?
    assertFileContains "shadowed" "$TD/d2.err" \
        "^$POLICY:3: warning: this rule never matches: the rule at $POLICY:2 "
    assertFileContains "duplicate" "$TD/d2.err" \
        "^$POLICY:4: warning: duplicate of the rule at $POLICY:2 "
    assertEquals "nothing else (other families, other ports)" 2 "$(wc -l <"$TD/d2.err")"
    assertFileContains "success line" "$TD/d2.out" ": ok: 5 rules"
}

test_check_bad_policy_names_file_line() {
    mkkey a >/dev/null
    write_policy <<EOF
key a $TD/a.key

conect 127.0.0.1:5000 key=a
EOF
    "$KEYTOOL" check "$POLICY" >"$TD/check.out" 2>&1
    assertEquals "check exit status" 1 $?
    assertFileContains "FILE:LINE" "$TD/check.out" "$POLICY:3"
    write_policy <<EOF
key a $TD/a.key
accept 127.0.0.1:5000 key=nosuchkey
EOF
    "$KEYTOOL" check "$POLICY" >"$TD/check2.out" 2>&1
    assertEquals "undefined key: exit status" 1 $?
    assertFileContains "undefined key: FILE:LINE" "$TD/check2.out" "$POLICY:2"
}

test_check_missing_or_bad_key_file() {
    write_policy <<EOF
key a $TD/missing.key
connect 127.0.0.1:5000 key=a
EOF
    "$KEYTOOL" check "$POLICY" >"$TD/check.out" 2>&1
    assertEquals "missing key: exit status" 1 $?
    assertFileContains "missing key: FILE:LINE" "$TD/check.out" "$POLICY:1"
    echo "not-a-key" >"$TD/bad.key"
    write_policy <<EOF
key a $TD/bad.key
connect 127.0.0.1:5000 key=a
EOF
    "$KEYTOOL" check "$POLICY" >"$TD/check2.out" 2>&1
    assertEquals "malformed key: exit status" 1 $?
    assertFileContains "malformed key: names the policy line or the key file" "$TD/check2.out" \
        "($POLICY:1|$TD/bad.key)"
}

test_check_warns_on_readable_key_files() {
    mkkey a >/dev/null
    write_policy <<EOF
key a $TD/a.key
connect 127.0.0.1:5000 key=a
EOF
    "$KEYTOOL" check "$POLICY" >"$TD/c600.out" 2>"$TD/c600.err"
    assertEquals "mode 0600: exit status" 0 $?
    assertFileNotContains "mode 0600: no warning" "$TD/c600.err" "warning"
    chmod 640 "$TD/a.key"
    "$KEYTOOL" check "$POLICY" >"$TD/c640.out" 2>"$TD/c640.err"
    assertEquals "mode 0640: still exit 0" 0 $?
    assertFileContains "mode 0640: warned with FILE:LINE" "$TD/c640.err" \
        "^$POLICY:1: warning: key a: $TD/a.key is readable by group \(mode 0640\)"
    chmod 604 "$TD/a.key"
    "$KEYTOOL" check "$POLICY" >"$TD/c604.out" 2>"$TD/c604.err"
    assertFileContains "mode 0604: warned" "$TD/c604.err" "readable by others \(mode 0604\)"
    # a key from `head -c32 /dev/urandom | base64` without chmod (umask 022)
    (umask 022; head -c 32 /dev/urandom | base64 >"$TD/raw.key")
    echo "key raw $TD/raw.key" >>"$POLICY"
    echo "accept 127.0.0.1:5000 key=raw" >>"$POLICY"
    "$KEYTOOL" check "$POLICY" >"$TD/craw.out" 2>"$TD/craw.err"
    assertEquals "a base64 key from /dev/urandom works as it is" 0 $?
    assertFileContains "and is warned about" "$TD/craw.err" \
        "^$POLICY:3: warning: key raw: .*readable by others \(mode 0644\)"
}

# rotate POLICY KEY: the new key beside KEY's file and the policies of the
# three steps beside POLICY (the procedure itself: 47-reload).
test_rotate_writes_key_and_step_policies() {
    mkkey app >/dev/null && mkkey other >/dev/null
    write_policy <<'EOF'
key app ${KEYDIR}/app.key   # the application key
key other other.key
connect 127.0.0.1:5000 key=other,app # comment kept
accept *:6000 key=app timeout=2000
accept *:6001 key=other
EOF
    local before keysha
    before=$(sha "$POLICY")
    keysha=$(sha "$TD/app.key")
    KEYDIR=$TD "$KEYTOOL" rotate "$POLICY" app >"$TD/rot.out" 2>"$TD/rot.err"
    assertEquals "rotate exit status ($(cat "$TD/rot.err"))" 0 $?
    assertEquals "new key mode" 600 "$(stat -c %a "$TD/app.key.new")"
    assertEquals "new key: base64 line" 45 "$(fsize "$TD/app.key.new")"
    assertNotEquals "new key differs" "$(cat "$TD/app.key")" "$(cat "$TD/app.key.new")"
    # fingerprints hold `+' and `/': fixed strings, not regexes
    local oldfpr newfpr
    oldfpr=$("$KEYTOOL" show "$TD/app.key")
    newfpr=$("$KEYTOOL" show "$TD/app.key.new")
    grep -qxF "key app: $TD/app.key $oldfpr" "$TD/rot.out"
    assertTrue "old fingerprint" $?
    grep -qxF "new key app.new: $TD/app.key.new $newfpr (made now)" "$TD/rot.out"
    assertTrue "new fingerprint" $?
    assertFileLacksString "the key itself is not printed" "$TD/rot.out" "$(cut -c1-20 "$TD/app.key.new")"
    assertEquals "the policy is untouched" "$before" "$(sha "$POLICY")"
    assertEquals "the key is untouched" "$keysha" "$(sha "$TD/app.key")"
    assertFileContains "step 1 defines the new key, \${VAR} kept" "$POLICY.rotate-1" \
        '^key app.new \$\{KEYDIR\}/app.key.new'
    assertFileContains "step 1: accept rules accept both" "$POLICY.rotate-1" \
        '^accept \*:6000 key=app,app.new timeout=2000$'
    assertFileContains "step 1: connect rules unchanged" "$POLICY.rotate-1" \
        '^connect 127.0.0.1:5000 key=other,app # comment kept$'
    assertFileContains "step 1: other rules unchanged" "$POLICY.rotate-1" '^accept \*:6001 key=other$'
    assertFileContains "step 2: connect rules put the new key first" "$POLICY.rotate-2" \
        '^connect 127.0.0.1:5000 key=other,app.new,app # comment kept$'
    assertFileContains "step 2: accept rules accept both" "$POLICY.rotate-2" \
        '^accept \*:6000 key=app,app.new timeout=2000$'
    assertEquals "step 3 is the policy as it was" "$before" "$(sha "$POLICY.rotate-3")"
    local step
    for step in 1 2 3; do
        KEYDIR=$TD "$KEYTOOL" check "$POLICY.rotate-$step" >"$TD/check$step.out" 2>&1
        assertEquals "step $step policy passes check" 0 $?
    done
    grep "^connect 127.0.0.1:5000 key=other(" "$TD/check2.out" | grep -qF "),app.new($newfpr),app("
    assertTrue "step 2: the connect rule sends with the new key" $?

    # again (another host, with the new key copied there): kept, not remade
    local newsha
    newsha=$(sha "$TD/app.key.new")
    KEYDIR=$TD "$KEYTOOL" rotate "$POLICY" app >"$TD/rot2.out" 2>&1
    assertEquals "rotate again: exit status" 0 $?
    assertFileContains "rotate again: the new key is kept" "$TD/rot2.out" "already there, kept"
    assertEquals "rotate again: new key unchanged" "$newsha" "$(sha "$TD/app.key.new")"

    # refusals
    KEYDIR=$TD "$KEYTOOL" rotate "$POLICY.rotate-1" app >"$TD/rot3.out" 2>&1
    assertEquals "a rotation in progress: exit status" 1 $?
    assertFileContains "a rotation in progress: says so" "$TD/rot3.out" \
        "$POLICY.rotate-1:2: key app.new is defined already"
    KEYDIR=$TD "$KEYTOOL" rotate "$POLICY" nosuch >"$TD/rot4.out" 2>&1
    assertEquals "unknown key: exit status" 1 $?
    assertFileContains "unknown key: says so" "$TD/rot4.out" "defines no key \`nosuch'"
    echo garbage >"$TD/other.key.new"
    KEYDIR=$TD "$KEYTOOL" rotate "$POLICY" other >"$TD/rot5.out" 2>&1
    assertEquals "a bad FILE.new: exit status" 1 $?
    assertEquals "a bad FILE.new is not overwritten" garbage "$(cat "$TD/other.key.new")"
    "$KEYTOOL" rotate "$POLICY" >/dev/null 2>&1
    assertEquals "usage: exit status" 2 $?
}

test_shimmed_program_refuses_bad_policy() {
    mkkey a >/dev/null
    write_policy <<EOF
key a $TD/a.key
connect 127.0.0.1:5000 key=a
accept 127.0.0.1:99999 key=a
EOF
    sealed "$PY" -c 'print("program ran")' >"$TD/prog.out" 2>"$TD/prog.err"
    assertEquals "exit status of a program under a bad policy" 1 $?
    assertFileNotContains "the program did not run" "$TD/prog.out" "program ran"
    assertFileContains "FILE:LINE on stderr" "$TD/prog.err" "$POLICY:3"
}

test_shimmed_program_refuses_missing_key() {
    write_policy <<EOF
key a $TD/gone.key
connect 127.0.0.1:5000 key=a
EOF
    sealed "$PY" -c 'print("program ran")' >"$TD/prog.out" 2>"$TD/prog.err"
    assertEquals "exit status with a missing key" 1 $?
    assertFileNotContains "the program did not run" "$TD/prog.out" "program ran"
    assertFileContains "FILE:LINE on stderr" "$TD/prog.err" "$POLICY:1"
    POLICY=$TD/no-such-policy sealed "$PY" -c 'print("program ran")' >"$TD/prog2.out" 2>"$TD/prog2.err"
    assertEquals "exit status with a missing policy file" 1 $?
    assertFileNotContains "the program did not run (missing policy)" "$TD/prog2.out" "program ran"
    assertFileContains "names the missing policy" "$TD/prog2.err" "no-such-policy"
}

test_unmatched_connection_passes_untouched() {
    local port other m
    mkkey a >/dev/null
    port=$(free_port)
    other=$(free_port)
    while [ "$other" = "$port" ]; do other=$(free_port); done
    write_policy <<EOF
key a $TD/a.key
connect 127.0.0.1:$other key=a
accept 127.0.0.1:$other key=a
EOF
    m=$(newmarker)
    mkmarked "$TD/in" 500000 "$m"
    # plain server, sealed client (policy for another port)
    bg srv plain socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$TD/out1,creat,trunc"
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    cap_start "$port" || { fail "no capture"; return 0; }
    sealed socat -u "OPEN:$TD/in" "TCP:127.0.0.1:$port" 2>"$TD/cli.err"
    assertEquals "sealed client, unmatched port: exit status" 0 $?
    wait_bg srv
    cap_stop
    assertSameFile "sealed client -> plain server" "$TD/in" "$TD/out1"
    cap_check --marker "$m" --expect-marker --min-bytes 500000
    assertEquals "the unmatched connection is plaintext on the wire" 0 $?
    # sealed server (unmatched port), plain client
    bg srv2 sealed socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$TD/out2,creat,trunc"
    wait_listen "$port" srv2 || { fail "sealed server did not listen"; return 0; }
    plain socat -u "OPEN:$TD/in" "TCP:127.0.0.1:$port"
    assertEquals "plain client -> sealed server on an unmatched port" 0 $?
    wait_bg srv2
    assertEquals "sealed server exit status" 0 $?
    assertSameFile "plain client -> sealed server" "$TD/in" "$TD/out2"
}

test_launcher_runs_the_program_sealed() {
    [ -x "$LAUNCHER" ] || { fail "no launcher at $LAUNCHER"; return 0; }
    local port
    mkkey a >/dev/null
    port=$(free_port)
    write_policy <<EOF
key a $TD/a.key
connect 127.0.0.1:$port key=a
accept 127.0.0.1:$port key=a
EOF
    mkdata "$TD/in" 1000000
    # under a sanitizer its runtime must stay first: the launcher keeps it there
    bg srv plain env ${SAN_RT:+LD_PRELOAD="$SAN_RT"} "${SAN_ENV[@]}" "$LAUNCHER" -f "$POLICY" -- socat -u "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "OPEN:$TD/out,creat,trunc"
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    cap_start "$port"
    # the client via LD_PRELOAD, so both ways of loading the shim meet
    sealed socat -u "OPEN:$TD/in" "TCP:127.0.0.1:$port"
    assertEquals "client exit status" 0 $?
    wait_bg srv
    assertEquals "launcher server exit status" 0 $?
    cap_stop
    assertSameFile "transfer" "$TD/in" "$TD/out"
    cap_check --preface "$PREFACE_HEX" --min-bytes 1000000
    assertEquals "sealed on the wire" 0 $?
}

. shunit2
