#!/bin/bash
# make deb (issue 16): the package builds and is lintian-clean at error
# level; its contents list has every file with its mode, root:root, and the
# example policy as the conffile /etc/sockseal/policy.example (never the
# default policy); it depends on Debian's libsodium (dpkg-shlibdeps); once
# installed with dpkg -i the installed launcher finds the shim at the
# multiarch path and seals socat at both ends (a random file by sha256; the
# capture: the preface, no plaintext marker); the bash completions complete;
# dpkg --purge removes every path dpkg -L listed.
#
# Root only (dpkg -i); the tests run in order and share the package.  Any
# earlier sockseal package is purged first; the teardown purges the one this
# test installed whatever failed, and puts back an /etc/sockseal that was
# there before.  SOCKSEAL_DEB=FILE tests a prebuilt package instead of
# running make deb.
. "$(dirname "$0")/lib.sh"

SKIP_WHY=
if [ "$(id -u)" -ne 0 ]; then
    SKIP_WHY="not root: dpkg -i and --purge need root"
elif ! command -v dpkg-deb >/dev/null || ! command -v dpkg >/dev/null; then
    SKIP_WHY="no dpkg: not a Debian system"
fi

INSTALLED=
ETC_BEFORE=
TRIPLET=
DEB=

# skip_if_needed: true (and the test skips, saying why) where it cannot run.
skip_if_needed() {
    [ -n "$SKIP_WHY" ] || return 1
    echo "    skipped: $SKIP_WHY"
    startSkipping
    return 0
}

# dpkg_do ARGS...: dpkg, retried (bounded) while another dpkg or apt holds
# the lock; output in $TD/dpkg.out.
dpkg_do() {
    local i rc
    for ((i = 0; i < 60; i++)); do
        timeout -k 5 120 dpkg "$@" >"$TD/dpkg.out" 2>&1
        rc=$?
        grep -q "lock" "$TD/dpkg.out" && [ $rc -ne 0 ] || return $rc
        sleep 1
    done
    return $rc
}

# mk TARGET: the top-level make, without the outer make's jobserver.
mk() {
    env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL \
        timeout -k 5 600 make -C "$ROOT" --no-print-directory "$@"
}

scenario_setup() {
    [ -z "$SKIP_WHY" ] || return 0
    [ -d /etc/sockseal ] && ETC_BEFORE=$(stat -c %a /etc/sockseal)
    TRIPLET=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
    if [ -n "${SOCKSEAL_DEB:-}" ]; then
        DEB=$SOCKSEAL_DEB
        return 0
    fi
    mk deb >"$SUITE_TMP/make-deb.out" 2>&1
    DEB=$(sed -n 's/^deb: \(build\/[^ ]*\.deb\) .*/\1/p' "$SUITE_TMP/make-deb.out")
    [ -z "$DEB" ] || DEB=$ROOT/$DEB
}

# The system as it was: the package this test installed purged, and an
# /etc/sockseal that existed before put back (dpkg removes it when empty).
deb_restore() {
    [ -z "$SKIP_WHY" ] || return 0
    if [ -n "$INSTALLED" ] && dpkg -s sockseal >/dev/null 2>&1; then
        echo "teardown: dpkg --purge sockseal"
        TD=$SUITE_TMP dpkg_do --purge sockseal || cat "$SUITE_TMP/dpkg.out"
    fi
    if [ -n "$ETC_BEFORE" ] && [ ! -d /etc/sockseal ]; then
        install -d -m "$ETC_BEFORE" /etc/sockseal
    fi
    INSTALLED=
}
eval "_lib_$(declare -f oneTimeTearDown)"
oneTimeTearDown() {
    deb_restore
    _lib_oneTimeTearDown
}

# need_deb: the package exists (or the test fails saying why).
need_deb() {
    [ -n "$DEB" ] && [ -f "$DEB" ] && return 0
    fail "no package: $(tail -n 15 "$SUITE_TMP/make-deb.out" 2>/dev/null | tr '\n' '|')"
    return 1
}

test_make_deb_is_lintian_clean() {
    skip_if_needed && return 0
    need_deb || return 0
    assertTrue "named sockseal_VERSION-REV_ARCH.deb" \
        "[[ '$(basename "$DEB")' =~ ^sockseal_[0-9.]+-[0-9]+_$(dpkg --print-architecture)\.deb$ ]]"
    command -v lintian >/dev/null || { fail "no lintian (tests/install-deps.sh)"; return 0; }
    timeout -k 5 300 lintian --fail-on error --display-info --show-overrides "$DEB" \
        >"$TD/lintian.out" 2>&1
    assertEquals "lintian --fail-on error exit status" 0 $?
    sed -e '/^running with root privileges/d' -e 's/^/    lintian: /' "$TD/lintian.out"
    assertFileNotContains "no error tags" "$TD/lintian.out" "^E: "
}

test_contents_modes_conffile_depends() {
    local want f mode n
    skip_if_needed && return 0
    need_deb || return 0
    dpkg-deb -c "$DEB" >"$TD/contents" 2>&1
    assertEquals "dpkg-deb -c exit status" 0 $?
    want="-rwxr-xr-x ./usr/bin/sockseal
-rwxr-xr-x ./usr/bin/sockseal-keytool
-rw-r--r-- ./usr/lib/$TRIPLET/sockseal/libsockseal.so
-rw-r--r-- ./usr/share/man/man1/sockseal.1.gz
-rw-r--r-- ./usr/share/man/man1/sockseal-keytool.1.gz
-rw-r--r-- ./usr/share/man/man5/sockseal-policy.5.gz
-rw-r--r-- ./usr/share/doc/sockseal/README.md
-rw-r--r-- ./usr/share/doc/sockseal/PROTOCOL.md
-rw-r--r-- ./usr/share/doc/sockseal/SECURITY.md
-rw-r--r-- ./usr/share/doc/sockseal/copyright
-rw-r--r-- ./usr/share/doc/sockseal/changelog.Debian.gz
-rw-r--r-- ./usr/share/bash-completion/completions/sockseal
-rw-r--r-- ./usr/share/bash-completion/completions/sockseal-keytool
-rw-r--r-- ./usr/share/lintian/overrides/sockseal
-rw-r--r-- ./usr/lib/tmpfiles.d/sockseal.conf
-rw-r--r-- ./etc/sockseal/policy.example"
    while read -r mode f; do
        assertEquals "$f: mode and owner" "$mode root/root" \
            "$(awk -v f="$f" '$6 == f { print $1, $2 }' "$TD/contents")"
    done <<<"$want"
    n=$(grep -c '^-' "$TD/contents")
    assertEquals "no other files: $(grep '^-' "$TD/contents" | awk '{print $6}' | tr '\n' ' ')" \
        "$(wc -l <<<"$want")" "$n"
    assertEquals "every directory 0755 root/root" "" \
        "$(grep '^d' "$TD/contents" | grep -v '^drwxr-xr-x root/root ')"
    assertEquals "no links, no other owners" "" "$(grep -v '^[-d]' "$TD/contents")"
    assertFileNotContains "never the default policy" "$TD/contents" " \./etc/sockseal/policy$"

    dpkg-deb -I "$DEB" conffiles >"$TD/conffiles" 2>&1
    assertEquals "conffiles" "/etc/sockseal/policy.example" "$(cat "$TD/conffiles")"
    dpkg-deb -I "$DEB" md5sums >"$TD/md5sums" 2>&1
    assertEquals "md5sums: every file but the conffile" \
        "$(( $(wc -l <<<"$want") - 1 ))" "$(grep -cE '^[0-9a-f]{32}  usr/' "$TD/md5sums")"
    for f in Maintainer Section Priority Description Installed-Size; do
        assertNotEquals "control: $f" "" "$(dpkg-deb -f "$DEB" "$f")"
    done
    assertContains "Depends: Debian's libsodium" "$(dpkg-deb -f "$DEB" Depends)" "libsodium23 (>= "
    assertContains "Depends: libc6" "$(dpkg-deb -f "$DEB" Depends)" "libc6 (>= "

    # inside: the shim links libsodium.so (no static copy); gzip -9n (no
    # name, no time); the changelog's version is the package's; DEP-5
    dpkg-deb -x "$DEB" "$TD/x"
    readelf -d "$TD/x/usr/lib/$TRIPLET/sockseal/libsockseal.so" >"$TD/readelf.out" 2>&1
    assertFileContains "shim NEEDED libsodium.so" "$TD/readelf.out" "NEEDED.*\[libsodium\.so\.[0-9]+\]"
    for f in usr/share/man/man1/sockseal.1.gz usr/share/man/man1/sockseal-keytool.1.gz \
        usr/share/man/man5/sockseal-policy.5.gz usr/share/doc/sockseal/changelog.Debian.gz; do
        assertEquals "$f: gzip header without name or time" " 1f 8b 08 00 00 00 00 00" \
            "$(od -An -tx1 -N8 "$TD/x/$f")"
    done
    gzip -dc "$TD/x/usr/share/doc/sockseal/changelog.Debian.gz" >"$TD/changelog"
    assertEquals "changelog version" "$(dpkg-deb -f "$DEB" Version)" \
        "$(dpkg-parsechangelog -l "$TD/changelog" -S Version 2>&1)"
    assertEquals "copyright: DEP-5" \
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/" \
        "$(head -n 1 "$TD/x/usr/share/doc/sockseal/copyright")"
    cmp -s "$ROOT/policy/example.policy" "$TD/x/etc/sockseal/policy.example"
    assertEquals "policy.example is policy/example.policy" 0 $?
}

test_dpkg_install_then_sealed_socat() {
    local port m lib
    skip_if_needed && return 0
    need_deb || return 0
    if dpkg -s sockseal >/dev/null 2>&1; then
        echo "    an earlier sockseal package: dpkg --purge sockseal first"
        dpkg_do --purge sockseal
        assertEquals "earlier package purged: $(cat "$TD/dpkg.out")" 0 $?
    fi
    INSTALLED=1
    dpkg_do -i "$DEB"
    assertEquals "dpkg -i exit status: $(tail -n 5 "$TD/dpkg.out")" 0 $?
    dpkg -L sockseal >"$SUITE_TMP/dpkg-L" 2>&1
    assertEquals "dpkg -s: installed" "install ok installed" \
        "$(dpkg-query -W -f='${Status}' sockseal 2>&1)"

    /usr/bin/sockseal --version >"$TD/version.out" 2>&1
    assertEquals "sockseal --version exit status" 0 $?
    assertFileContains "sockseal --version" "$TD/version.out" \
        "^sockseal $(dpkg-deb -f "$DEB" Version | sed 's/-[^-]*$//; s/\./\\./g') "
    lib=/usr/lib/$TRIPLET/sockseal/libsockseal.so
    assertTrue "the shim at the multiarch path" "[ -f '$lib' ]"
    assertEquals "shim mode" 644 "$(stat -c %a "$lib" 2>/dev/null)"
    assertFalse "no /etc/sockseal/policy installed" "[ -e /etc/sockseal/policy ] && dpkg -S /etc/sockseal/policy"

    /usr/bin/sockseal-keytool gen "$TD/k.key" >/dev/null || { fail "installed keytool gen"; return 0; }
    port=$(free_port)
    write_policy <<EOF
key k $TD/k.key
accept  127.0.0.1:$port key=k
connect 127.0.0.1:$port key=k
EOF
    /usr/bin/sockseal-keytool check "$POLICY" >"$TD/check.out" 2>&1
    assertEquals "installed keytool check" 0 $?
    # shellcheck disable=SC2016
    timeout -k 5 "$TMO" env -u LD_PRELOAD /usr/bin/sockseal -f "$POLICY" -- \
        sh -c 'echo "$LD_PRELOAD"' >"$TD/env.out" 2>"$TD/env.err"
    assertEquals "the installed launcher preloads the packaged shim" "$lib" "$(cat "$TD/env.out")"

    m=$(newmarker)
    mkmarked "$TD/in" 2000000 "$m"
    bg srv plain env -u LD_PRELOAD /usr/bin/sockseal -f "$POLICY" -- \
        socat -u -t 30 "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr" "CREATE:$TD/got"
    wait_listen "$port" srv || { fail "server did not listen"; return 0; }
    cap_start "$port" || { fail "tcpdump did not start"; return 0; }
    timeout -k 5 "$TMO" env -u LD_PRELOAD /usr/bin/sockseal -f "$POLICY" -- \
        socat -u -t 30 "OPEN:$TD/in" "TCP:127.0.0.1:$port" 2>"$TD/cli.err"
    assertEquals "sealed client exit status" 0 $?
    wait_bg srv
    assertEquals "sealed server exit status" 0 $?
    cap_stop
    assertSameFile "the file through the installed package" "$TD/in" "$TD/got"
    cap_check --preface "$PREFACE_HEX" --marker "$m" --min-bytes 2000000
    assertEquals "sealed on the wire" 0 $?
}

# comp FUNC WORDS...: what the installed completion offers for the last word.
comp() {
    local f=$1
    shift
    # shellcheck disable=SC2016
    timeout 20 bash -c '
        . /usr/share/bash-completion/bash_completion
        . "/usr/share/bash-completion/completions/$1"
        f=$2; shift 2
        COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
        "$f" "$1" "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
        printf "%s\n" "${COMPREPLY[@]}" | sort -u | tr "\n" " "' \
        comp "$1" "$f" "$@" 2>/dev/null
}

test_installed_bash_completion() {
    skip_if_needed && return 0
    [ -n "$INSTALLED" ] || { fail "not installed (the test before failed)"; return 0; }
    [ -f /usr/share/bash-completion/bash_completion ] ||
        { fail "no bash-completion (tests/install-deps.sh)"; return 0; }
    printf 'key db k/db.key\nkey web /k/web.key\n' >"$TD/pol"
    : >"$TD/afile"
    cd "$TD" || return 0
    local w first
    first=" $(comp _sockseal sockseal "")"
    for w in doctor explain help socat; do
        assertContains "sockseal: the first word may be $w" "$first" " $w "
    done
    assertEquals "sockseal: options" "-- --help --version -f -h -v -vv " "$(comp _sockseal sockseal -)"
    assertEquals "sockseal -f: files" "afile pol " "$(comp _sockseal sockseal -f "")"
    assertContains "sockseal -- CMD: commands" "$(comp _sockseal sockseal -f pol -- soca)" "socat"
    assertEquals "explain: direction" "accept connect " "$(comp _sockseal sockseal explain -v "")"
    assertEquals "keytool: subcommands" "check gen help identity pub rotate show " \
        "$(comp _sockseal_keytool sockseal-keytool "")"
    assertEquals "keytool show: options" "-- --help --identity --pub -h " \
        "$(comp _sockseal_keytool sockseal-keytool show -)"
    assertEquals "keytool check: files" "afile pol " "$(comp _sockseal_keytool sockseal-keytool check "")"
    assertEquals "keytool rotate POLICY: its key names" "db web " \
        "$(comp _sockseal_keytool sockseal-keytool rotate pol "")"
    cd - >/dev/null || return 0
}

test_purge_leaves_nothing() {
    local p gone=0 kept=0
    skip_if_needed && return 0
    [ -n "$INSTALLED" ] || { fail "not installed (the test before failed)"; return 0; }
    [ -s "$SUITE_TMP/dpkg-L" ] || { fail "no dpkg -L list"; return 0; }
    dpkg_do --purge sockseal
    assertEquals "dpkg --purge exit status: $(tail -n 5 "$TD/dpkg.out")" 0 $?
    INSTALLED=
    dpkg -s sockseal >/dev/null 2>&1
    assertNotEquals "dpkg -s sockseal fails" 0 $?
    assertFalse "/etc/sockseal/policy.example gone" "[ -e /etc/sockseal/policy.example ]"
    # every file gone; a directory left only where another package owns it
    # (/usr/bin) or it was there before the test (/etc/sockseal)
    while read -r p; do
        [ "$p" = /. ] && continue
        if [ ! -e "$p" ] && [ ! -L "$p" ]; then
            gone=$((gone + 1))
        elif [ -d "$p" ] && { dpkg-query -S "$p" >/dev/null 2>&1 ||
            { [ "$p" = /etc/sockseal ] && [ -n "$ETC_BEFORE" ]; }; }; then
            kept=$((kept + 1))
        else
            fail "$p is still there after the purge"
        fi
    done <"$SUITE_TMP/dpkg-L"
    assertTrue "the files and our directories went ($gone gone, $kept shared)" "[ $gone -ge 17 ]"
    assertFalse "/usr/lib/$TRIPLET/sockseal gone" "[ -e /usr/lib/$TRIPLET/sockseal ]"
}

. shunit2
