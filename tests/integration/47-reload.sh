#!/bin/bash
# Live reload of the policy and its keys in a long-running sealed server
# (tests/programs/reload_prog.py, started once per test): rotation with
# key=old,new while a connection opened before keeps working; a broken
# policy keeps the last good one and is logged with FILE:LINE; key files
# changed in place, by rename, and by a Kubernetes `..data` symlink swap;
# ${CREDENTIALS_DIRECTORY} in key paths (systemd LoadCredential=); connect
# rules of a running client; the keytool rotate procedure end to end, with
# a client connecting without pause and with idle hosts between steps.
# Every connection decision looks at the files, so the first connection
# after a change must already run under it: no retry there.  (Only a fix
# that is a file the failed policy alone names is found by a retry, at
# most a tenth of a second later: tests wait for that one by retrying a
# bounded number of times, never by timing.)
. "$(dirname "$0")/lib.sh"

RP=$PROGS/reload_prog.py

# replace FILE: FILE from stdin, atomically (written beside, renamed over).
replace() { cat >"$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"; }

# policy_with FILE "NAME..." RULE...: FILE, replaced atomically, defining
# each key NAME as $TD/NAME.key, then the rules, one a line.
policy_with() {
    local f=$1 names=$2 n
    shift 2
    {
        for n in $names; do echo "key $n $TD/$n.key"; done
        printf '%s\n' "$@"
    } | replace "$f"
}

# keys NAME...: $TD/NAME.key for each, made with the key tool.
keys() {
    local n
    for n in "$@"; do mkkey "$n" >/dev/null || return 1; done
}

# start_server [ARGS]: the sealed echo server on $PORT with logs at level
# $LOGLVL (default info) in $TD/srv.err.
start_server() {
    SOCKSEAL_LOG=${LOGLVL:-info} bg srv sealed "$PY" "$RP" server 127.0.0.1 "$PORT" "$@"
    wait_listen "$PORT" srv
}

# echo_with KEYFILE [OUT]: one peer connection with KEYFILE; true when the
# echo of $TD/in came back intact.
echo_with() {
    local out=${2:-$TD/echo.out}
    rm -f "$out"
    peer connect 127.0.0.1 "$PORT" --key "$1" --send "$TD/in" --recv-out "$out" \
        --timeout 5 >>"$TD/peer.out" 2>&1 && cmp -s "$TD/in" "$out"
}

# retry CMD...: until CMD succeeds, at most 40 times 0.3 s apart.
retry() {
    local i
    for ((i = 0; i < 40; i++)); do
        "$@" && return 0
        sleep 0.3
    done
    return 1
}

# logged_after_conn KEYFILE REGEX: one connection (the shim looks at the
# files only at a connection), then is REGEX in the server's log?
logged_after_conn() {
    echo_with "$1" || true
    grep -qE -- "$2" "$TD/srv.err"
}

# refused KEYFILE: the server refuses a peer with KEYFILE (and says so).
refused() { ! echo_with "$1"; }

setUp_common() {
    PORT=$(free_port)
    mkdata "$TD/in" 20000
}

test_rotate_accept_both_keeps_existing_connection() {
    setUp_common
    keys old new || { fail "no key"; return 0; }
    policy_with "$POLICY" "old new" "accept 127.0.0.1:$PORT key=old" \
        "connect 127.0.0.1:$PORT key=old"
    start_server || { fail "server did not listen"; return 0; }
    # a connection opened before the reload, held open across it
    mkdata "$TD/first" 70000
    mkdata "$TD/then" 90000
    bg hold sealed "$PY" "$RP" hold 127.0.0.1 "$PORT" --first "$TD/first" \
        --then "$TD/then" --go "$TD/go"
    wait_line "$TD/hold.out" "first echoed" 20 || { fail "held connection did not start"; return 0; }
    refused "$TD/new.key"
    assertTrue "before the change the new key is refused" $?

    policy_with "$POLICY" "old new" "accept 127.0.0.1:$PORT key=old,new"
    echo_with "$TD/new.key"
    assertTrue "the new key is accepted by the first connection after the change" $?
    echo_with "$TD/old.key"
    assertTrue "the old key is still accepted" $?
    assertFileContains "reload logged" "$TD/srv.err" "info: .*policy reloaded: 1 rules"

    touch "$TD/go"
    wait_bg hold
    assertEquals "held connection exit status" 0 $?
    assertFileContains "held connection: all bytes echoed after the reload" "$TD/hold.out" \
        "^hold: OK recv=160000$"
    assertTrue "server still running" "running srv"
    assertFileContains "the server saw the held connection whole" "$TD/srv.out" \
        "^conn 1: OK recv=160000$"
}

test_broken_policy_keeps_last_good() {
    setUp_common
    keys a b || { fail "no key"; return 0; }
    policy_with "$POLICY" "a b" "accept 127.0.0.1:$PORT key=a"
    start_server || { fail "server did not listen"; return 0; }
    echo_with "$TD/a.key"
    assertTrue "before: key a accepted" $?
    # a syntax error on line 4: the rule that would allow key b is not taken
    policy_with "$POLICY" "a b" "accept 127.0.0.1:$PORT key=a,b" \
        "acept 127.0.0.1:1 plain"
    logged_after_conn "$TD/a.key" "policy reload failed"
    assertTrue "the failed reload is logged at the first connection" $?
    assertFileContains "the log names FILE:LINE" "$TD/srv.err" \
        "warn: .*policy reload failed.*$POLICY:4: unknown statement \`acept'"
    echo_with "$TD/a.key"
    assertTrue "after the broken change: key a still accepted" $?
    refused "$TD/b.key"
    assertTrue "after the broken change: key b still refused" $?
    # more checks while it stays broken: logged only once
    local i
    for ((i = 0; i < 8; i++)); do echo_with "$TD/a.key" || break; sleep 0.3; done
    assertEquals "connections while broken" 8 "$i"
    assertEquals "the error is logged once per change" 1 "$(grep -c "policy reload failed" "$TD/srv.err")"
    # a key file missing: the same, with the key's line
    policy_with "$POLICY" "a missing" "accept 127.0.0.1:$PORT key=a,missing"
    logged_after_conn "$TD/a.key" "$POLICY:2: key missing: $TD/missing.key"
    assertTrue "a missing key file is logged with FILE:LINE" $?
    echo_with "$TD/a.key"
    assertTrue "missing key: key a still accepted" $?
    # the fix: the key file the failed policy named appears
    cp -p "$TD/b.key" "$TD/missing.key"
    retry echo_with "$TD/missing.key"
    assertTrue "the fixed policy is taken" $?
    assertFileContains "reload logged" "$TD/srv.err" "policy reloaded: 1 rules"
    assertTrue "server still running" "running srv"
}

test_key_file_changed_in_place_and_by_rename() {
    setUp_common
    keys k1 k2 k3 || { fail "no key"; return 0; }
    cp -p "$TD/k1.key" "$TD/app.key"
    policy_with "$POLICY" app "accept 127.0.0.1:$PORT key=app"
    start_server || { fail "server did not listen"; return 0; }
    echo_with "$TD/k1.key"
    assertTrue "before: k1 accepted" $?
    local ino
    ino=$(stat -c %i "$TD/app.key")
    # in place: same inode, same size (only the content and times change)
    cat "$TD/k2.key" >"$TD/app.key"
    assertEquals "written in place" "$ino" "$(stat -c %i "$TD/app.key")"
    echo_with "$TD/k2.key"
    assertTrue "key changed in place is picked up" $?
    refused "$TD/k1.key"
    assertTrue "the replaced key is refused" $?
    # by rename, as Vault agent writes its templates
    cp -p "$TD/k3.key" "$TD/app.key.tmp"
    mv -f "$TD/app.key.tmp" "$TD/app.key"
    echo_with "$TD/k3.key"
    assertTrue "key replaced by rename is picked up" $?
    refused "$TD/k2.key"
    assertTrue "the renamed-over key is refused" $?
    assertEquals "two reloads" 2 "$(grep -c "policy reloaded" "$TD/srv.err")"
}

# kube_volume DIR FILE SRC: a Kubernetes volume at DIR holding FILE (from
# SRC) the kubelet's way: DIR/FILE -> ..data/FILE, ..data -> a timestamped
# directory.  An update writes a new directory, renames a new ..data
# symlink over the old one and removes the old directory.
kube_volume() {
    local dir=$1 file=$2 src=$3 old new
    new=..$(date +%Y_%m_%d_%H_%M_%S).$RANDOM
    mkdir -p "$dir/$new"
    cp -p "$src" "$dir/$new/$file"
    if [ -L "$dir/..data" ]; then
        old=$(readlink "$dir/..data")
        ln -s "$new" "$dir/..data_tmp"
        mv -T "$dir/..data_tmp" "$dir/..data"
        rm -rf "${dir:?}/$old"
    else
        ln -s "$new" "$dir/..data"
        ln -s "..data/$file" "$dir/$file"
    fi
}

# A Kubernetes Secret volume for the key and a ConfigMap volume for the
# policy, the server started with the launcher (`sockseal -f`); both
# volumes are updated the kubelet's way.
test_kubernetes_symlink_swap() {
    setUp_common
    keys k1 k2 || { fail "no key"; return 0; }
    local sec=$TD/secret cm=$TD/configmap
    kube_volume "$sec" app.key "$TD/k1.key"
    echo "key app $sec/app.key" >"$TD/policy.v1"
    echo "accept 127.0.0.1:$PORT key=app" >>"$TD/policy.v1"
    kube_volume "$cm" policy "$TD/policy.v1"
    "$KEYTOOL" check "$cm/policy" >"$TD/check.out" 2>&1
    assertEquals "keytool check on the symlinked policy and key" 0 $?
    # under a sanitizer its runtime must stay first: the launcher keeps it there
    SOCKSEAL_LOG=info bg srv plain env ${SAN_RT:+LD_PRELOAD="$SAN_RT"} "${SAN_ENV[@]}" \
        "$LAUNCHER" -f "$cm/policy" -- "$PY" "$RP" server 127.0.0.1 "$PORT"
    wait_listen "$PORT" srv || { fail "server did not listen"; return 0; }
    echo_with "$TD/k1.key"
    assertTrue "before: k1 accepted" $?
    kube_volume "$sec" app.key "$TD/k2.key"
    echo_with "$TD/k2.key"
    assertTrue "key swapped by the ..data symlink is picked up" $?
    refused "$TD/k1.key"
    assertTrue "the old key is refused" $?
    # the ConfigMap: the policy now also accepts k1 (another key file)
    cp -p "$TD/k1.key" "$TD/k1copy.key"
    { echo "key app $sec/app.key"; echo "key old $TD/k1copy.key"
      echo "accept 127.0.0.1:$PORT key=app,old"; } >"$TD/policy.v2"
    kube_volume "$cm" policy "$TD/policy.v2"
    echo_with "$TD/k1.key"
    assertTrue "policy swapped by the ..data symlink is picked up" $?
    echo_with "$TD/k2.key"
    assertTrue "and the key from the Secret is still accepted" $?
    assertFileNotContains "no failed reload" "$TD/srv.err" "reload failed"
}

# systemd LoadCredential=app.key:... sets $CREDENTIALS_DIRECTORY.
test_credentials_directory_variable() {
    setUp_common
    keys k1 k2 || { fail "no key"; return 0; }
    mkdir -p "$TD/creds"
    cp -p "$TD/k1.key" "$TD/creds/app.key"
    replace "$POLICY" <<'EOF'
key app ${CREDENTIALS_DIRECTORY}/app.key
EOF
    echo "accept 127.0.0.1:$PORT key=app" >>"$POLICY"
    # unset: the program does not start, the message names FILE:LINE
    sealed env -u CREDENTIALS_DIRECTORY "$PY" -c 'print("program ran")' \
        >"$TD/unset.out" 2>"$TD/unset.err"
    assertEquals "unset variable: exit status" 1 $?
    assertFileNotContains "unset variable: the program did not run" "$TD/unset.out" "program ran"
    assertFileContains "unset variable: FILE:LINE and the variable" "$TD/unset.err" \
        "$POLICY:1: key app: environment variable CREDENTIALS_DIRECTORY is not set"
    CREDENTIALS_DIRECTORY=$TD/creds "$KEYTOOL" check "$POLICY" >"$TD/check.out" 2>&1
    assertEquals "keytool check expands the variable" 0 $?
    # set: expanded; the server clears its environment once listening, and
    # a reload still expands the variable as it was at start
    CREDENTIALS_DIRECTORY=$TD/creds start_server --clear-env ||
        { fail "server did not listen"; return 0; }
    echo_with "$TD/k1.key"
    assertTrue "key from \${CREDENTIALS_DIRECTORY} accepted" $?
    cp -p "$TD/k2.key" "$TD/creds/app.key.tmp"
    mv -f "$TD/creds/app.key.tmp" "$TD/creds/app.key"
    echo_with "$TD/k2.key"
    assertTrue "the new key in \${CREDENTIALS_DIRECTORY} is picked up" $?
    assertFileNotContains "no failed reload" "$TD/srv.err" "reload failed"
}

# A running client: its connect rule changes to key=new,old; its next
# connections use the new key (the server logs which key a peer used).
test_connect_rule_of_running_client() {
    setUp_common
    keys old new || { fail "no key"; return 0; }
    policy_with "$POLICY" "old new" "accept 127.0.0.1:$PORT key=old,new"
    LOGLVL=debug start_server || { fail "server did not listen"; return 0; }
    local cpol=$TD/client.policy
    policy_with "$cpol" "old new" "connect 127.0.0.1:$PORT key=old"
    POLICY=$cpol SOCKSEAL_LOG=info bg cli sealed "$PY" "$RP" loop 127.0.0.1 "$PORT" \
        --count 150 --pause 0.2 --stop "$TD/stop"
    wait_line "$TD/srv.err" "used key old" 20
    assertTrue "the client starts with the old key" $?
    policy_with "$cpol" "old new" "connect 127.0.0.1:$PORT key=new,old"
    wait_line "$TD/srv.err" "used key new" 20
    assertTrue "the running client switches to the new key" $?
    touch "$TD/stop"
    wait_bg cli
    assertFileContains "client reload logged" "$TD/cli.err" "policy reloaded: 1 rules"
    assertFileNotContains "every client connection echoed" "$TD/cli.out" "ERROR"
    assertFileContains "the client made connections" "$TD/cli.out" "^loop [0-9]+: OK"
}

# count_at_least FILE REGEX N: are there N lines matching REGEX in FILE?
count_at_least() { [ "$(grep -cE -- "$2" "$1" 2>/dev/null)" -ge "$3" ]; }

# host_step HOST STEP: apply step STEP of `sockseal-keytool rotate` on the
# "host" whose files are in $TD/HOST (the commands rotate printed).
host_step() {
    local d=$TD/$1
    case $2 in
        1|2) mv "$d/policy.rotate-$2" "$d/policy" ;;
        3) cp -p "$d/app.key.new" "$d/app.key.tmp" && mv "$d/app.key.tmp" "$d/app.key" &&
           mv "$d/policy.rotate-3" "$d/policy" && rm "$d/app.key.new" ;;
    esac
}

# The whole procedure of `sockseal-keytool rotate`, on two "hosts" (a
# server and a client, each with its own policy and key files) that take
# each step one after the other, while the client connects without pause:
# no connection may fail, in any mix of steps.
test_keytool_rotate_procedure() {
    setUp_common
    local h step n
    rotate_setup || { fail "setup failed"; return 0; }
    assertFileContains "a new key made" "$TD/rotate-srv.out" "app.key.new SHA256:.*made now"
    assertFileContains "the copied new key is used" "$TD/rotate-cli.out" "already there, kept"
    assertEquals "one new key on both hosts" \
        "$(grep -o 'app.key.new SHA256:[^ ]*' "$TD/rotate-srv.out")" \
        "$(grep -o 'app.key.new SHA256:[^ ]*' "$TD/rotate-cli.out")"
    POLICY=$TD/cli/policy SOCKSEAL_LOG=info bg cli sealed "$PY" "$RP" loop 127.0.0.1 "$PORT" \
        --count 400 --pause 0.1 --stop "$TD/stop"
    wait_line "$TD/srv.err" "used key app$" 20 || { fail "the client did not connect"; return 0; }

    # each step: the server, then the client; each reload is seen before
    # the next host moves (the client's connections make both look)
    for step in 1 2 3; do
        for h in srv cli; do
            n=$(grep -c "policy reloaded" "$TD/$h.err")
            host_step "$h" "$step"
            # the server has no connect rule: its step 2 changes nothing
            # that decides, and an unchanged policy is not republished
            [ "$h$step" = srv2 ] && continue
            retry count_at_least "$TD/$h.err" "policy reloaded" $((n + 1))
            assertTrue "step $step on $h is picked up" $?
        done
        [ "$step" = 2 ] && { retry grep -q "used key app.new$" "$TD/srv.err"
            assertTrue "after step 2 the client uses the new key" $?; }
    done
    touch "$TD/stop"
    wait_bg cli
    assertFileNotContains "no client connection failed at any step" "$TD/cli.out" "ERROR"
    assertTrue "the client connected throughout" "count_at_least '$TD/cli.out' '^loop [0-9]+: OK' 10"
    assertFileNotContains "no failed reload" "$TD/srv.err" "reload failed"
    assertEquals "step 3 restores the policy" "key app app.key" "$(head -n 1 "$TD/srv/policy")"
    assertEquals "the server's key is the new one" "$(sha "$TD/newkey")" "$(sha "$TD/srv/app.key")"
    echo_with "$TD/newkey"
    assertTrue "the new key is accepted" $?
    refused "$TD/app.key"
    assertTrue "the old key is refused" $?
}

# rotate_setup: two "hosts" (a server and a client, each with its own
# policy and key file app) in $TD/srv and $TD/cli; the server started with
# debug logs (which key each peer used); `sockseal-keytool rotate` run on
# both, the new key copied, as README says.  $TD/newkey: the new key.
rotate_setup() {
    mkdir -p "$TD/srv" "$TD/cli"
    keys app || return 1
    cp -p "$TD/app.key" "$TD/srv/app.key"
    cp -p "$TD/app.key" "$TD/cli/app.key"
    printf 'key app app.key\naccept 127.0.0.1:%s key=app\n' "$PORT" | replace "$TD/srv/policy"
    printf 'key app app.key\nconnect 127.0.0.1:%s key=app\n' "$PORT" | replace "$TD/cli/policy"
    POLICY=$TD/srv/policy LOGLVL=debug start_server || return 1
    "$KEYTOOL" rotate "$TD/srv/policy" app >"$TD/rotate-srv.out" 2>&1 || return 1
    cp -p "$TD/srv/app.key.new" "$TD/cli/app.key.new"
    "$KEYTOOL" rotate "$TD/cli/policy" app >"$TD/rotate-cli.out" 2>&1 || return 1
    cp -p "$TD/srv/app.key.new" "$TD/newkey"
}

# one_conn: the on-demand client makes one connection; true when it was
# echoed.  (It waits for the go file, so it is idle in between.)
one_conn() {
    local n
    n=$(grep -c '^loop' "$TD/cli.out" 2>/dev/null)
    touch "$TD/go"
    wait_line "$TD/cli.out" "^loop $((n + 1)):" 20 || return 1
    grep -q "^loop $((n + 1)): OK" "$TD/cli.out"
}

# The rotation the issue saw refused: the same procedure with both hosts
# idle between steps (no connection at all, for longer than any check
# interval of before) and steps a fraction of a second apart, the client a
# long-running process.  The first connection after each step, the only
# one, must succeed and use what the step put in force.
test_rotation_steps_on_idle_hosts() {
    setUp_common
    local step h k=0
    rotate_setup || { fail "setup failed"; return 0; }
    POLICY=$TD/cli/policy SOCKSEAL_LOG=info bg cli sealed "$PY" "$RP" loop 127.0.0.1 "$PORT" \
        --count 50 --go "$TD/go" --stop "$TD/stop"
    one_conn
    assertTrue "before the rotation" $?
    for step in 1 2 3; do
        for h in srv cli; do
            host_step "$h" "$step"
            # idle: two long pauses, the rest a fraction of a second
            k=$((k + 1))
            if [ $((k % 3)) = 0 ]; then sleep 1.5; else sleep 0.2; fi
            one_conn
            assertTrue "the first connection after step $step on $h" $?
        done
        # step 2 sends with app.new; step 3 names the new key app again
        [ "$step" = 1 ] && continue
        assertEquals "after step $step the server sees the key the step puts in force" \
            "used key $([ "$step" = 2 ] && echo app.new || echo app)" \
            "$(grep -o 'used key app[.a-z]*$' "$TD/srv.err" | tail -n 1)"
    done
    touch "$TD/stop"
    wait_bg cli
    assertFileNotContains "no connection refused" "$TD/cli.out" "ERROR"
    assertEquals "seven connections, each echoed" 7 "$(grep -c '^loop [0-9]*: OK' "$TD/cli.out")"
    assertFileNotContains "no handshake refused by the server" "$TD/srv.err" "refused\|failed"
    echo_with "$TD/newkey"
    assertTrue "the new key is accepted" $?
    refused "$TD/app.key"
    assertTrue "the old key is refused" $?
}

. shunit2
