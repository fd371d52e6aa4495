#!/bin/bash
# make install / make uninstall: every file with its mode, the build tree
# left as it was, the installed launcher preloading the installed library
# (sealed end to end), the man pages render without warnings and their
# entries as written (sockseal(1) explain and doctor, policy(5) rotation), DESTDIR
# staging, the bash completion and the tmpfiles.d entry, and uninstall leaves
# nothing behind.
. "$(dirname "$0")/lib.sh"

# The files make install puts under PREFIX, with their modes.
FILES="755 bin/sockseal
755 bin/sockseal-keytool
644 lib/sockseal/libsockseal.so
644 share/man/man1/sockseal.1
644 share/man/man1/sockseal-keytool.1
644 share/man/man5/sockseal-policy.5
644 share/doc/sockseal/example.policy
644 share/doc/sockseal/PROTOCOL.md
644 share/bash-completion/completions/sockseal
644 share/bash-completion/completions/sockseal-keytool
644 lib/tmpfiles.d/sockseal.conf"

# mk TARGET VAR=...: the top-level make on the built tree (this build dir,
# this sanitizer), without the outer make's jobserver.
mk() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
        make -C "$ROOT" --no-print-directory B="$B" SAN="$SAN" "$@"
}

# launch ARGS...: the installed launcher, with LD_PRELOAD holding only the
# sanitizer runtime (if any), as a sanitizer build expects.
PRE_ENV=(-u LD_PRELOAD)
[ -n "$SAN_RT" ] && PRE_ENV=(LD_PRELOAD="$SAN_RT")
launch() {
    timeout -k 5 "$TMO" env "${PRE_ENV[@]}" "${SAN_ENV[@]}" "$PFX/bin/sockseal" "$@"
}

setUp_prefix() {
    PFX=$TD/prefix
    mk install PREFIX="$PFX" >"$TD/install.out" 2>&1
}

test_install_puts_every_file_with_its_mode() {
    local before after mode f
    before=$(stat -c '%Y %s' "$B/libsockseal.so" "$B/sockseal" "$B/sockseal-keytool")
    setUp_prefix
    assertEquals "make install exit status" 0 $?
    while read -r mode f; do
        assertTrue "$f installed" "[ -f '$PFX/$f' ]"
        assertEquals "$f mode" "$mode" "$(stat -c %a "$PFX/$f" 2>/dev/null)"
    done <<<"$FILES"
    assertEquals "nothing else installed" 11 "$(find "$PFX" -type f | wc -l)"
    assertEquals "the installed completions load" \
        "complete -F _sockseal sockseal|complete -F _sockseal_keytool sockseal-keytool" \
        "$(bash -c ". '$PFX/share/bash-completion/completions/sockseal'; . '$PFX/share/bash-completion/completions/sockseal-keytool'; complete -p sockseal; complete -p sockseal-keytool" 2>&1 | paste -sd'|')"
    assertFileContains "the tmpfiles.d entry makes /run/sockseal" "$PFX/lib/tmpfiles.d/sockseal.conf" "^d /run/sockseal 1777 root root -$"
    cmp -s "$B/libsockseal.so" "$PFX/lib/sockseal/libsockseal.so"
    assertEquals "the built library, as it is" 0 $?
    after=$(stat -c '%Y %s' "$B/libsockseal.so" "$B/sockseal" "$B/sockseal-keytool")
    assertEquals "the build tree is untouched" "$before" "$after"
    assertFileNotContains "install compiled nothing" "$TD/install.out" "^  (CC|LD) "
}

test_installed_launcher_preloads_the_installed_library() {
    local lib want
    setUp_prefix || { fail "make install failed: $(cat "$TD/install.out")"; return 0; }
    mkkey k >/dev/null || { fail "no key"; return 0; }
    write_policy <<EOF
key k $TD/k.key
connect 127.0.0.1:1 key=k
EOF
    lib=$(realpath "$PFX/lib/sockseal/libsockseal.so")
    want="${SAN_RT:+$SAN_RT }$lib"
    # shellcheck disable=SC2016
    launch -f "$POLICY" -- sh -c 'echo "$LD_PRELOAD"; echo "$SOCKSEAL_POLICY"' \
        >"$TD/env.out" 2>"$TD/env.err"
    assertEquals "launcher exit status" 0 $?
    assertEquals "LD_PRELOAD names the installed library" "$want" "$(sed -n 1p "$TD/env.out")"
    assertEquals "SOCKSEAL_POLICY is the policy" "$(realpath "$POLICY")" "$(sed -n 2p "$TD/env.out")"
    # without the installed library, the launcher names where it looked
    rm -f "$PFX/lib/sockseal/libsockseal.so"
    launch -f "$POLICY" -- true 2>"$TD/missing.err"
    assertEquals "no library: exit status 1" 1 $?
    assertFileContains "names the installed path" "$TD/missing.err" \
        "cannot find libsockseal.so \(looked for .*/prefix/bin/../lib/sockseal/libsockseal.so and .*/prefix/bin/libsockseal.so\)"
}

test_installed_launcher_seals_end_to_end() {
    local port m
    setUp_prefix || { fail "make install failed: $(cat "$TD/install.out")"; return 0; }
    port=$(free_port)
    "$PFX/bin/sockseal-keytool" gen "$TD/k.key" >/dev/null || { fail "installed keytool gen"; return 0; }
    write_policy <<EOF
key k $TD/k.key
accept  127.0.0.1:$port key=k
connect 127.0.0.1:$port key=k
EOF
    "$PFX/bin/sockseal-keytool" check "$POLICY" >"$TD/check.out" 2>&1
    assertEquals "installed keytool check" 0 $?
    m=$(newmarker)
    mkmarked "$TD/in" 1000000 "$m"
    bg srv plain env "${PRE_ENV[@]}" "${SAN_ENV[@]}" "$PFX/bin/sockseal" -f "$POLICY" -- \
        socat -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" EXEC:cat
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    cap_start "$port" || { fail "tcpdump did not start"; return 0; }
    launch -f "$POLICY" -- socat -t 30 "TCP:127.0.0.1:$port" STDIO \
        <"$TD/in" >"$TD/out" 2>"$TD/cli.err"
    assertEquals "sealed client exit status" 0 $?
    wait_bg srv
    assertEquals "sealed server exit status" 0 $?
    cap_stop
    assertSameFile "echo through the installed launcher" "$TD/in" "$TD/out"
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-bytes 2000000
    assertEquals "sealed on the wire" 0 $?
}

test_man_pages_render_without_warnings() {
    local f
    setUp_prefix || { fail "make install failed: $(cat "$TD/install.out")"; return 0; }
    for f in man1/sockseal.1 man1/sockseal-keytool.1 man5/sockseal-policy.5; do
        if command -v groff >/dev/null; then
            groff -man -Tutf8 -ww -z "$PFX/share/man/$f" >"$TD/groff.err" 2>&1
            assertEquals "$f: groff exit status" 0 $?
            assertEquals "$f: groff warnings" "" "$(cat "$TD/groff.err")"
        fi
        if command -v man >/dev/null; then
            LC_ALL=C MANWIDTH=80 man -l "$PFX/share/man/$f" >"$TD/man.out" 2>"$TD/man.err"
            assertEquals "$f: man -l exit status" 0 $?
            assertEquals "$f: man -l messages" "" "$(cat "$TD/man.err")"
            assertFileContains "$f: rendered" "$TD/man.out" "^SEE ALSO"
        fi
    done
    command -v groff >/dev/null || command -v man >/dev/null ||
        fail "neither groff nor man-db installed (tests/install-deps.sh)"
}

# man_render PAGE: the page from the source tree as man (or groff) renders
# it at 80 columns, plain text, into $TD/page.txt.
man_render() {
    if command -v man >/dev/null; then
        LC_ALL=C MANWIDTH=80 man -l "$ROOT/docs/man/$1" >"$TD/page.txt" 2>"$TD/page.err"
    else
        LC_ALL=C groff -man -Tascii -P-cbou -rLL=80n "$ROOT/docs/man/$1" >"$TD/page.txt" 2>"$TD/page.err"
    fi
}

# Without warnings is not enough: a .TP tag made of several macro lines
# renders its first line as the tag and the rest as the body (the explain
# entry once read "explain [-f" / "policy] [-v] ... Shows which rule").
test_man_entries_render_as_written() {
    man_render sockseal.1
    assertEquals "sockseal.1: nothing said while rendering" "" "$(cat "$TD/page.err")"
    assertFileContains "explain entry: its synopsis on one line" "$TD/page.txt" \
        '^       explain \[-f policy\] \[-v\] connect\|accept addr:port$'
    assertEquals "explain entry: the text follows the synopsis" "Shows" \
        "$(grep -A1 '^       explain \[-f policy\]' "$TD/page.txt" | sed -n '2s/^ *\(Shows\) .*/\1/p')"
    assertFileContains "doctor entry: several binaries" "$TD/page.txt" '^       doctor binary\.\.\.$'
    assertFileContains "synopsis: doctor" "$TD/page.txt" '^       sockseal doctor binary\.\.\.$'
    assertFileContains "synopsis: explain" "$TD/page.txt" \
        '^       sockseal explain \[-f policy\] \[-v\] connect\|accept addr:port$'
    # sockseal-policy(5) rotates keys as README and keytool rotate do
    man_render sockseal-policy.5
    assertFileContains "policy(5): step 1 accepts both keys" "$TD/page.txt" 'Accept rules accept both keys: key=app,app\.new\.'
    assertFileContains "policy(5): step 2 sends with the new key" "$TD/page.txt" 'Connect rules send with the new key: key=app\.new,app\.'
}

test_destdir_and_uninstall_leave_nothing() {
    setUp_prefix || { fail "make install failed: $(cat "$TD/install.out")"; return 0; }
    touch "$PFX/bin/other-program"      # not ours: must survive
    mk uninstall PREFIX="$PFX" >"$TD/uninstall.out" 2>&1
    assertEquals "make uninstall exit status" 0 $?
    assertEquals "only the foreign file is left" "$PFX/bin/other-program" "$(find "$PFX" -type f)"
    assertFalse "lib/sockseal removed" "[ -e '$PFX/lib/sockseal' ]"
    assertFalse "share/doc/sockseal removed" "[ -e '$PFX/share/doc/sockseal' ]"
    # staged: DESTDIR + PREFIX
    mk install DESTDIR="$TD/stage" PREFIX=/opt/ss >"$TD/stage.out" 2>&1
    assertEquals "staged install exit status" 0 $?
    assertEquals "staged files" 11 "$(find "$TD/stage/opt/ss" -type f | wc -l)"
    assertTrue "staged launcher" "[ -x '$TD/stage/opt/ss/bin/sockseal' ]"
    mk uninstall DESTDIR="$TD/stage" PREFIX=/opt/ss >>"$TD/stage.out" 2>&1
    assertEquals "staged uninstall exit status" 0 $?
    assertEquals "staged files after uninstall" 0 "$(find "$TD/stage" -type f | wc -l)"
}

. shunit2
