#!/bin/bash
# CGI with the client connection as the script's stdout after the server
# read the request (issue 14: read, then exec).  mini_httpd (Debian's
# mini-httpd 1.30) accepts, forks, reads the request, forks again and
# execs the CGI.  Seen with strace -f -e trace=accept,dup2,pipe2,execve:
#   nph- scripts:  dup2(conn, 0); dup2(conn, 1); dup2(conn, 2); execve
#                  (the connection itself is the script's stdout)
#   other scripts: dup2(conn, 0); pipe2([r, w]); dup2(w, 1); dup2(w, 2);
#                  execve (mini_httpd interposes a pipe for the output and
#                  copies it to the connection itself; the script only
#                  inherits the connection on stdin and never touches it
#                  on a GET)
# mini_httpd gives a CGI a fresh environment (PATH, LD_LIBRARY_PATH and the
# CGI variables; strace -v shows no LD_PRELOAD), so LD_PRELOAD cannot
# carry the shim into the script: the deployment way is /etc/ld.so.preload
# and the default policy /etc/sockseal/policy.  The test makes both in a
# private mount namespace (unshare -m, an overlay over /etc whose upper
# layer is a tmpfs), so nothing outside the test sees them.  The other CGI
# servers Debian 12 ships relay CGI output through pipes (busybox httpd,
# lighttpd mod_cgi, apache mod_cgi); thttpd is not in Debian 12.
# Checks: a 1 MiB body with a marker, by sha256, through sealed curl; the
# capture sealed.  Controls: the nph flow with no shim; the piped CGI,
# sealed (the script is a bystander: works without issue 14).
# Second real program, git daemon (strace -f -e trace=execve,dup2): the
# daemon forks and execs `git-daemon --serve` with the connection on 0/1
# (before any byte: works today), which reads the request pkt-line, then
# forks and execs `git upload-pack` on the same fds 0/1 and waits for it
# (read, then exec, the parent keeping its copy); the environment is kept.
# A sealed git clone over git:// of a repository with a marker in a blob:
# the commit hash, git fsck, the blob by sha256; the capture sealed;
# control: the same clone unsealed.
. "$(dirname "$0")/lib.sh"

MINI_HTTPD=/usr/sbin/mini_httpd

scenario_setup() {
    CGI_SKIP=
    if [ ! -x "$MINI_HTTPD" ]; then
        CGI_SKIP="$MINI_HTTPD missing (tests/install-deps.sh: mini-httpd)"
    elif [ -n "$SAN_RT" ]; then
        CGI_SKIP="the shim comes from /etc/ld.so.preload here; not with a sanitizer runtime"
    elif ! timeout 10 unshare -m --propagation private true 2>/dev/null; then
        CGI_SKIP="unshare -m not permitted here"
    fi
    # the CGI runs as nobody: it reads the policy, the key and the docroot
    chmod 755 "$SUITE_TMP"
}

# cgi_setup plain|sealed: docroot with the two scripts and a 1 MiB body;
# starts mini_httpd (sealed: in a mount namespace whose /etc has
# ld.so.preload and sockseal/policy).  Sets PORT and M.
cgi_setup() {
    if [ -n "${CGI_SKIP:-}" ]; then
        echo "    SKIPPED: $CGI_SKIP"
        startSkipping
        return 2
    fi
    chmod 755 "$TD"
    PORT=$(free_port)
    loopback_policy "$PORT" || return 1
    chmod 644 "$POLICY"
    chown nobody "$KEY"
    M=$(newmarker)
    mkdir -p "$TD/www/cgi-bin"
    mkmarked "$TD/www/body" $((1024 * 1024)) "$M"
    cat >"$TD/www/cgi-bin/nph-body" <<EOF
#!/bin/sh
printf 'HTTP/1.0 200 OK\\r\\nContent-Type: application/octet-stream\\r\\nContent-Length: %s\\r\\n\\r\\n' $(fsize "$TD/www/body")
exec cat $TD/www/body
EOF
    cat >"$TD/www/cgi-bin/piped-body" <<EOF
#!/bin/sh
printf 'Content-Type: application/octet-stream\\r\\n\\r\\n'
exec cat $TD/www/body
EOF
    chmod -R a+rX "$TD/www"
    chmod 755 "$TD"/www/cgi-bin/*
    local run=("$MINI_HTTPD" -D -p "$PORT" -h 127.0.0.1 -d "$TD/www" -c 'cgi-bin/*' -u nobody -l "$TD/mh.log")
    if [ "$1" = plain ]; then
        bg mh plain "${run[@]}"
    else
        mkdir -p "$TD/ov"
        # shellcheck disable=SC2016
        bg mh plain unshare -m --propagation private sh -ec '
            ov=$1; preload=$2; policy=$3; shift 3
            mount -t tmpfs tmpfs "$ov"
            mkdir "$ov/up" "$ov/work"
            mount -t overlay overlay -o "lowerdir=/etc,upperdir=$ov/up,workdir=$ov/work" /etc
            mkdir -p /etc/sockseal
            cp "$policy" /etc/sockseal/policy
            chmod 644 /etc/sockseal/policy
            echo "$preload" >/etc/ld.so.preload
            exec "$@"' sh "$TD/ov" "$PRELOAD" "$POLICY" "${run[@]}"
    fi
    wait_listen "$PORT" mh
}

# fetch sealed|plain PATH NAME: curl into $TD/NAME.got
fetch() {
    "$1" curl -sS --max-time 30 -o "$TD/$3.got" -w '%{http_code} %{size_download}\n' \
        "http://127.0.0.1:$PORT/$2" >"$TD/$3.out" 2>"$TD/$3.err"
}

test_control_nph_unsealed() {
    cgi_setup plain || { [ $? = 2 ] || fail "mini_httpd did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    fetch plain cgi-bin/nph-body nph
    assertEquals "curl exit status" 0 $?
    assertFileContains "200, whole body" "$TD/nph.out" "^200 $(fsize "$TD/www/body")\$"
    assertSameFile "1 MiB from the nph- CGI" "$TD/www/body" "$TD/nph.got"
    cap_stop
    cap_check --marker "$M" --expect-marker
    assertEquals "capture: the unsealed control's marker is seen" 0 $?
}

# the nph- script writes the response on the connection mini_httpd read
# the request from
test_nph_cgi_sealed() {
    cgi_setup sealed || { [ $? = 2 ] || fail "mini_httpd did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    if ! curl_usable; then cap_stop; echo "    skipped: curl"; return 0; fi
    fetch sealed cgi-bin/nph-body nph
    assertEquals "sealed curl exit status" 0 $?
    assertFileContains "200, whole body" "$TD/nph.out" "^200 $(fsize "$TD/www/body")\$"
    assertSameFile "1 MiB from the nph- CGI" "$TD/www/body" "$TD/nph.got"
    assertFileNotContains "no shim warning in mini_httpd or the CGI" "$TD/mh.err" 'sockseal\[[0-9]+\]: (warn|error)'
    assertFileNotContains "no shim warning in curl" "$TD/nph.err" 'sockseal\[[0-9]+\]: (warn|error)'
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$M" --marker "nph-body" --min-conns 1 \
        --min-bytes "$(fsize "$TD/www/body")"
    assertEquals "capture: the preface, no marker, no request in clear" 0 $?
}

# control: the piped CGI under the same sealed set-up; mini_httpd's own
# process writes the response; the script only inherits the connection
test_control_piped_cgi_sealed() {
    cgi_setup sealed || { [ $? = 2 ] || fail "mini_httpd did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    if ! curl_usable; then cap_stop; echo "    skipped: curl"; return 0; fi
    fetch sealed cgi-bin/piped-body piped
    assertEquals "sealed curl exit status" 0 $?
    assertFileContains "200, whole body" "$TD/piped.out" "^200 $(fsize "$TD/www/body")\$"
    assertSameFile "1 MiB from the piped CGI" "$TD/www/body" "$TD/piped.got"
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$M" --marker "piped-body" --min-conns 1 \
        --min-bytes "$(fsize "$TD/www/body")"
    assertEquals "capture: the preface, no marker" 0 $?
    # the plain curl is refused by the sealed server: the seal is real
    fetch plain cgi-bin/piped-body refused
    assertNotEquals "an unsealed curl gets nothing" 0 $?
    assertFalse "no body for the unsealed curl" "[ -s '$TD/refused.got' ]"
}

# gd_setup plain|sealed: a repository with one commit (a 512 KiB blob with
# the marker, stored uncompressed so the marker would show on the wire) and
# git daemon on PORT.  Sets PORT, M, COMMIT.
gd_setup() {
    command -v git >/dev/null || { echo "    SKIPPED: git missing"; startSkipping; return 2; }
    PORT=$(free_port)
    loopback_policy "$PORT" || return 1
    M=$(newmarker)
    local g=(git -c user.name=sockseal -c user.email=t@example.org -c core.compression=0
        -c pack.compression=0)
    git init -q "$TD/src" || return 1
    mkmarked "$TD/src/blob" $((512 * 1024)) "$M"
    (cd "$TD/src" && "${g[@]}" add blob && "${g[@]}" commit -qm "sockseal handoff") || return 1
    COMMIT=$(git -C "$TD/src" rev-parse HEAD)
    git -c pack.compression=0 clone -q --bare "$TD/src" "$TD/repos/r.git" || return 1
    git -C "$TD/repos/r.git" config pack.compression 0
    bg gd "$1" git daemon --base-path="$TD/repos" --export-all --listen=127.0.0.1 \
        --port="$PORT" --reuseaddr
    wait_listen "$PORT" gd
}

# clone_check sealed|plain: clone over git:// and check it
clone_check() {
    "$1" git clone -q "git://127.0.0.1:$PORT/r.git" "$TD/clone" >"$TD/clone.out" 2>"$TD/clone.err"
    assertEquals "git clone exit status" 0 $?
    assertEquals "the clone's HEAD" "$COMMIT" "$(git -C "$TD/clone" rev-parse HEAD 2>/dev/null)"
    plain git -C "$TD/clone" fsck --full --strict >"$TD/fsck.out" 2>&1
    assertEquals "git fsck of the clone" 0 $?
    assertSameFile "the blob" "$TD/src/blob" "$TD/clone/blob"
}

test_control_git_daemon_unsealed() {
    gd_setup plain || { [ $? = 2 ] || fail "git daemon did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    clone_check plain
    cap_stop
    cap_check --marker "$M" --expect-marker
    assertEquals "capture: the unsealed control's marker is seen" 0 $?
}

test_git_daemon_sealed() {
    gd_setup sealed || { [ $? = 2 ] || fail "git daemon did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    clone_check sealed
    assertFileNotContains "no shim warning in git daemon or upload-pack" "$TD/gd.err" 'sockseal\[[0-9]+\]: (warn|error)'
    assertFileNotContains "no shim warning in git clone" "$TD/clone.err" 'sockseal\[[0-9]+\]: (warn|error)'
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$M" --marker "git-upload-pack" --min-conns 1 \
        --min-bytes $((512 * 1024))
    assertEquals "capture: the preface, no marker, no request in clear" 0 $?
}

. shunit2
