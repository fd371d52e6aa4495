#!/bin/bash
# Dovecot IMAP, both ends sealed (issue 14: a session passed over
# SCM_RIGHTS).  The master listens; imap-login (a separately exec'd image,
# chrooted, as dovenull) accepts, sends the greeting, reads CAPABILITY and
# LOGIN, asks auth, then passes the connection to an imap process (another
# exec'd image) with sendmsg(SCM_RIGHTS) on a unix socket, and exits from
# the conversation.  imap carries the rest (SELECT, a 1 MiB FETCH, LOGOUT)
# on the same connection.  Checked by hand once with strace -f -e
# trace=accept,sendmsg,recvmsg,execve on this configuration (dovecot
# 2.3.19.1, Debian 12): imap-login accept(7) = 17, then sendmsg(18, ...
# cmsg_type=SCM_RIGHTS, cmsg_data=[17]) and imap recvmsg(16, ...
# SCM_RIGHTS, cmsg_data=[7]).  Its own configuration in $TD: base_dir,
# state_dir and log in $TD, a passwd-file passdb/userdb with one user
# (uid/gid 65534, nobody) whose maildir is in $TD, listen 127.0.0.1 on a
# free port, ssl=no, plaintext LOGIN allowed, import_environment letting
# LD_PRELOAD and SOCKSEAL_POLICY through to the master's children (it
# clears their environment otherwise), default_internal_user dovecot,
# default_login_user dovenull (Debian's package makes both; the tests skip
# when they are missing).  Control: the same flow with no shim at all.
. "$(dirname "$0")/lib.sh"

DOVECOT=/usr/sbin/dovecot
MAILUID=65534

scenario_setup() {
    DV_SKIP=
    if [ ! -x "$DOVECOT" ] || [ ! -x /usr/lib/dovecot/imap ] || [ ! -x /usr/lib/dovecot/imap-login ]; then
        DV_SKIP="dovecot or its imap/imap-login missing (tests/install-deps.sh: dovecot-imapd)"
    elif ! id dovecot >/dev/null 2>&1 || ! id dovenull >/dev/null 2>&1; then
        DV_SKIP="users dovecot and dovenull missing (the dovecot-core package makes them)"
    elif [ -n "$SAN_RT" ] && ! timeout -k 2 10 env LD_PRELOAD="$SAN_RT" "${SAN_ENV[@]}" \
        "$DOVECOT" --version >/dev/null 2>&1; then
        DV_SKIP="dovecot does not start with $SAN_RT preloaded (without the shim)"
    elif [ -n "$SAN_RT" ]; then
        # Found while adding this test: with the sanitizer runtime and the
        # instrumented shim preloaded, dovecot's auth process dies of
        # SIGSEGV in its start-up, before the runtime has mapped its shadow
        # memory (the shim of 93753db does the same; the runtime alone and
        # the plain shim do not).  Not the hand-off; left open.
        DV_SKIP="dovecot's auth process dies at start under $SAN and the instrumented shim (open)"
    fi
    # imap runs as $MAILUID and must reach the maildir under the suite dir
    chmod 755 "$SUITE_TMP"
}

# dv_setup sealed|plain: config, user, a ~1 MiB message with a marker in
# the maildir ($TD/msg), policy; starts dovecot -F.  Sets PORT and M.
dv_setup() {
    if [ -n "${DV_SKIP:-}" ]; then
        echo "    SKIPPED: $DV_SKIP"
        startSkipping
        return 2
    fi
    chmod 755 "$TD"
    PORT=$(free_port)
    loopback_policy "$PORT" || return 1
    chmod 644 "$POLICY"
    M=$(newmarker)
    mkdir -p "$TD/run" "$TD/state" "$TD/home/tuser/Maildir/new" \
        "$TD/home/tuser/Maildir/cur" "$TD/home/tuser/Maildir/tmp"
    echo "tuser:{PLAIN}sockseal-pw:$MAILUID:$MAILUID::$TD/home/tuser" >"$TD/passwd"
    "$PY" - "$TD/msg" "$M" <<'PY' || return 1
import os, sys
path, m = sys.argv[1], sys.argv[2].encode()
head = b"From: a@example.org\r\nTo: tuser@example.org\r\nSubject: sockseal 1 MiB\r\n\r\n"
body, i = bytearray(), 0
while len(body) < 1024 * 1024:
    body += b"%s line %d %s\r\n" % (m, i, os.urandom(30).hex().encode())
    i += 1
open(path, "wb").write(head + body)
PY
    cp "$TD/msg" "$TD/home/tuser/Maildir/cur/1700000000.M1P1.sockseal:2,"
    chown -R "$MAILUID:$MAILUID" "$TD/home"
    cat >"$TD/dovecot.conf" <<EOF
base_dir = $TD/run
state_dir = $TD/state
instance_name = sockseal-$PORT
log_path = $TD/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
mail_location = maildir:~/Maildir
# the master gives its children a clean environment: the shim's own
# variables must be let through (what a deployment would write too)
import_environment = TZ LD_PRELOAD SOCKSEAL_POLICY ${SAN_ENV[*]%%=*}
first_valid_uid = $MAILUID
last_valid_uid = $MAILUID
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%u $TD/passwd
}
userdb {
  driver = passwd-file
  args = username_format=%u $TD/passwd
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $PORT
  }
  inet_listener imaps {
    port = 0
  }
}
EOF
    cat >"$TD/imapc.py" <<'PY'
import hashlib, imaplib, sys
port, out = int(sys.argv[1]), sys.argv[2]
m = imaplib.IMAP4("127.0.0.1", port)
print("greeting", m.welcome.decode(errors="replace"), flush=True)
print("login", m.login("tuser", "sockseal-pw")[0], flush=True)
typ, d = m.select("INBOX")
print("select", typ, d[0].decode(), flush=True)
typ, d = m.fetch("1", "(BODY.PEEK[])")
body = d[0][1]
open(out, "wb").write(body)
print("fetch", typ, len(body), hashlib.sha256(body).hexdigest(), flush=True)
print("logout", m.logout()[0], flush=True)
PY
    bg dovecot "$1" "$DOVECOT" -F -c "$TD/dovecot.conf"
    wait_listen "$PORT" dovecot 20
}

# imap_fetch sealed|plain NAME: the client; NAME.out, NAME.got; status.
imap_fetch() {
    "$1" "$PY" "$TD/imapc.py" "$PORT" "$TD/$2.got" >"$TD/$2.out" 2>"$TD/$2.err"
}

# check_fetch NAME: the whole conversation, the message byte for byte.
check_fetch() {
    assertFileContains "$1: logged in" "$TD/$1.out" "^login OK\$"
    assertFileContains "$1: INBOX has the message" "$TD/$1.out" "^select OK 1\$"
    assertFileContains "$1: fetched" "$TD/$1.out" "^fetch OK $(fsize "$TD/msg") "
    assertFileContains "$1: logged out" "$TD/$1.out" "^logout BYE\$"
    assertSameFile "$1: the 1 MiB message" "$TD/msg" "$TD/$1.got"
}

# dv_stop: stop dovecot (TERM to our timeout, which passes it on to the
# master; the master stops its children); wait_bg bounds it.
dv_stop() { stop_bg dovecot TERM; }

test_control_plain_fetch() {
    dv_setup plain || { [ $? = 2 ] || fail "dovecot did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    imap_fetch plain cli
    assertEquals "plain imap client exit status" 0 $?
    check_fetch cli
    assertFileContains "imap-login logged the login" "$TD/dovecot.log" "imap-login: Info: Login: user=<tuser>"
    assertFileContains "imap carried the session to LOGOUT" "$TD/dovecot.log" "imap\(tuser\).*Disconnected: Logged out"
    cap_stop
    cap_check --marker "$M" --expect-marker
    assertEquals "capture: the plain control's marker is seen" 0 $?
    dv_stop
}

test_sealed_fetch_1mib() {
    dv_setup sealed || { [ $? = 2 ] || fail "dovecot did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    imap_fetch sealed cli
    assertEquals "sealed imap client exit status" 0 $?
    check_fetch cli
    assertFileContains "imap-login logged the login" "$TD/dovecot.log" "imap-login: Info: Login: user=<tuser>"
    assertFileContains "imap carried the session to LOGOUT" "$TD/dovecot.log" "imap\(tuser\).*Disconnected: Logged out"
    assertFileNotContains "no shim warning in dovecot's processes" "$TD/dovecot.err" 'sockseal\[[0-9]+\]: (warn|error)'
    assertFileNotContains "nor in dovecot's log" "$TD/dovecot.log" 'sockseal\['
    assertFileNotContains "no shim warning in the client" "$TD/cli.err" 'sockseal\[[0-9]+\]: (warn|error)'
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$M" --marker "sockseal-pw" --marker "LOGIN" \
        --min-conns 1 --min-bytes "$(fsize "$TD/msg")"
    assertEquals "capture: the preface, no marker, no password" 0 $?
    dv_stop
}

# two sealed clients at once, then a third: imap-login passes each
test_sealed_three_logins() {
    dv_setup sealed || { [ $? = 2 ] || fail "dovecot did not start"; return 0; }
    cap_start "$PORT" || { fail "no capture"; return 0; }
    bg c1 sealed "$PY" "$TD/imapc.py" "$PORT" "$TD/c1.got"
    bg c2 sealed "$PY" "$TD/imapc.py" "$PORT" "$TD/c2.got"
    wait_bg c1
    assertEquals "client 1 exit status" 0 $?
    wait_bg c2
    assertEquals "client 2 exit status" 0 $?
    imap_fetch sealed c3
    assertEquals "client 3 exit status" 0 $?
    check_fetch c1
    check_fetch c2
    check_fetch c3
    assertEquals "three imap sessions to LOGOUT" 3 \
        "$(grep -cE 'imap\(tuser\).*Disconnected: Logged out' "$TD/dovecot.log")"
    cap_stop
    cap_check --preface "$PREFACE_HEX" --marker "$M" --marker "sockseal-pw" --min-conns 3 \
        --min-bytes $((3 * $(fsize "$TD/msg")))
    assertEquals "capture: the preface on each, no marker" 0 $?
    dv_stop
}

. shunit2
