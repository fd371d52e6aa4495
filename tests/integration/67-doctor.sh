#!/bin/bash
# `sockseal doctor BIN...` (issue 16): a verdict block per binary and the
# worst exit status (0 can be sealed or nothing to seal, 1 cannot, 2 usage
# or unreadable); wrapper scripts followed to the program they exec; #!
# through env (-S); version managers' shims followed by asking the manager
# (`pyenv which`: the machine's pyenv shim, and a stand-in manager that
# answers, fails, or hangs and is killed; one others may write is not run); "nothing to seal" for programs
# without socket calls, never for one importing dlopen or an interpreter;
# loops and long chains of wrappers bounded and reported.
. "$(dirname "$0")/lib.sh"

# doc STATUS BIN...: run doctor; assert the exit status; output in
# $TD/d.out and $TD/d.err.
doc() {
    local want=$1 rc
    shift
    "$LAUNCHER" doctor "$@" >"$TD/d.out" 2>"$TD/d.err"
    rc=$?
    assertEquals "doctor $*: exit status (stderr: $(head -c 300 "$TD/d.err"))" "$want" "$rc"
}

# verdicts: the verdict lines of $TD/d.out, one per block.
verdicts() {
    grep -E '^[^ ].*: (can be sealed|nothing to seal|cannot be sealed): ' "$TD/d.out"
}

# script NAME TEXT: an executable script $TD/NAME holding TEXT (printf).
script() {
    printf "$2" >"$TD/$1"
    chmod +x "$TD/$1"
}

# cbin NAME [CC ARGS...] < SOURCE: compile a C program into $TD/NAME.
cbin() {
    local name=$1
    shift
    cat >"$TD/$name.c"
    gcc -O0 -o "$TD/$name" "$TD/$name.c" "$@" 2>"$TD/$name.cc.err"
}

test_several_binaries_one_block_each() {
    echo 'int main(void) { return 0; }' | cbin static -static ||
        { fail "gcc -static failed: $(cat "$TD/static.cc.err")"; return 0; }
    doc 0 /usr/bin/socat /usr/bin/sha256sum
    verdicts >"$TD/v"
    assertEquals "two blocks" 2 "$(wc -l <"$TD/v")"
    assertFileContains "socat first" "$TD/v" '^/usr/bin/socat: can be sealed: dynamically linked against glibc'
    assertFileContains "then sha256sum" "$TD/v" '^/usr/bin/sha256sum: nothing to seal: it makes no socket calls'
    assertEquals "one empty line between the blocks" 1 "$(grep -c '^$' "$TD/d.out")"
    assertEquals "socat's details in its block" 2 \
        "$(awk '/^$/ { exit } /^  imports: sockets: socket connect accept/ { n++ } /^\/usr\/bin\/socat: / { n++ } END { print n }' "$TD/d.out")"

    # any that cannot: 1; the others still judged
    doc 1 /usr/bin/socat "$TD/static" /usr/bin/sha256sum
    verdicts >"$TD/v"
    assertEquals "three blocks" 3 "$(wc -l <"$TD/v")"
    assertFileContains "the static one" "$TD/v" "^$TD/static: cannot be sealed: statically linked"
    # found on PATH, as one binary is
    PATH=/usr/bin:/bin doc 0 socat redis-server
    assertEquals "both found on PATH" "/usr/bin/socat /usr/bin/redis-server" \
        "$(verdicts | sed 's/: .*//' | tr '\n' ' ' | sed 's/ $//')"

    # one that is not there: 2, said on stderr; the others judged
    doc 2 /usr/bin/socat no-such-program-here "$TD/static"
    assertFileContains "missing: says so" "$TD/d.err" 'doctor: no-such-program-here: not found on PATH'
    assertEquals "the two others judged" 2 "$(verdicts | wc -l)"

    # usage errors: none given, an unknown option (wherever it is)
    doc 2
    assertFileContains "none given: usage" "$TD/d.err" '^usage: sockseal doctor BINARY\.\.\.'
    doc 2 /usr/bin/socat --bogus
    assertFileContains "unknown option: usage" "$TD/d.err" '^usage: '
    assertEquals "unknown option: nothing judged" "" "$(cat "$TD/d.out")"
    # "--" ends the options
    doc 0 -- /usr/bin/socat
    assertFileContains "after --" "$TD/d.out" '^/usr/bin/socat: can be sealed'
}

test_wrapper_script_followed() {
    script w.sh '#!/bin/sh\nexec /usr/bin/socat "$@"\n'
    doc 0 "$TD/w.sh"
    assertFileContains "the verdict is socat's" "$TD/d.out" "^$TD/w.sh: can be sealed: dynamically linked against glibc"
    assertFileContains "says what it followed" "$TD/d.out" "^  follows: $TD/w.sh is a wrapper script: it execs /usr/bin/socat\$"
    assertFileContains "socat's imports" "$TD/d.out" '^  imports: sockets: socket connect accept'

    # exec through PATH, env and assignments, after a redirection-only exec
    script e.sh '#!/bin/bash\nset -e\nexec >/dev/null 2>&1\nFOO=1 exec env -i BAR=2 redis-server --port 0 "$@"\n'
    PATH=/usr/bin:/bin doc 0 "$TD/e.sh"
    assertFileContains "PATH and env" "$TD/d.out" "^  follows: $TD/e.sh is a wrapper script: it execs /usr/bin/redis-server\$"
    # beside the script ("$(dirname "$0")"): no socket calls there
    cp /usr/bin/sha256sum "$TD/real"
    script d.sh '#!/bin/sh\nexec "$(dirname "$0")/real" "$@"\n'
    doc 0 "$TD/d.sh"
    assertFileContains "beside it" "$TD/d.out" "^$TD/d.sh: nothing to seal: $TD/real makes no socket calls"

    # not followable: a variable; the shell is judged, and it says so
    script v.sh '#!/bin/sh\nexec "$JAVA_HOME/bin/java" "$@"\n'
    doc 0 "$TD/v.sh"
    assertFileContains "variable: not followed" "$TD/d.out" \
        "^  note: not followed: $TD/v.sh execs \\\$JAVA_HOME/bin/java, which depends on the script's variables"
    assertFileContains "variable: the shell judged" "$TD/d.out" "^  follows: $TD/v.sh is a #! script run by /bin/sh\$"
    # control: a script that runs socat without exec is not a wrapper
    script n.sh '#!/bin/sh\n/usr/bin/socat "$@"\n'
    doc 0 "$TD/n.sh"
    assertFileContains "no exec: the shell" "$TD/d.out" "^  follows: $TD/n.sh is a #! script run by /bin/sh\$"
    assertFileNotContains "no exec: not socat" "$TD/d.out" "socat"
    assertFileContains "no exec: its commands are said to be programs of their own" "$TD/d.out" \
        '^  note: the commands the script runs are programs of their own'
}

test_env_shebang() {
    script p.py '#!/usr/bin/env -S python3 -u\nprint(1)\n'
    PATH=/usr/bin:/bin doc 0 "$TD/p.py"
    assertFileContains "env -S: python3" "$TD/d.out" \
        "^  follows: $TD/p.py is a #! script run by /usr/bin/python3 \\(/usr/bin/env finds it on PATH\\)\$"
    assertFileContains "env -S: python3 can be sealed" "$TD/d.out" "^$TD/p.py: can be sealed: "
    script s.sh '#!/usr/bin/env socat\n'
    PATH=/usr/bin:/bin doc 0 "$TD/s.sh"
    assertFileContains "env: socat" "$TD/d.out" "^  follows: $TD/s.sh is a #! script run by /usr/bin/socat "
    script x.sh '#!/usr/bin/env no-such-interpreter-here\n'
    doc 2 "$TD/x.sh"
    assertFileContains "env: missing program" "$TD/d.err" "no-such-interpreter-here \\(run by /usr/bin/env\\) is not found on PATH"
}

# A stand-in version manager in $TD/mgr/libexec/pyenv: `which NAME`
# answers with $TD/answer's path (or fails, or hangs), and logs its args.
fake_manager() {
    mkdir -p "$TD/mgr/libexec" "$TD/shims"
    cat >"$TD/mgr/libexec/pyenv" <<EOF
#!/bin/sh
echo "\$@" >>"$TD/asked"
echo "\$\$ \${PYENV_ROOT:-unset}" >"$TD/mgr.pid"
case "\$(cat "$TD/mode")" in
answer) cat "$TD/answer" ;;
fail)   echo "pyenv: \$2: command not found" >&2; exit 127 ;;
hang)   sleep 60 & echo \$! >"$TD/sleep.pid"; wait ;;
esac
EOF
    chmod +x "$TD/mgr/libexec/pyenv"
    # the shim pyenv writes, with this root
    cat >"$TD/shims/socat" <<EOF
#!/usr/bin/env bash
set -e
[ -n "\$PYENV_DEBUG" ] && set -x

program="\${0##*/}"

export PYENV_ROOT="$TD/mgr"
exec "$TD/mgr/libexec/pyenv" exec "\$program" "\$@"
EOF
    chmod +x "$TD/shims/socat"
}

# alive PID: PID runs (not gone, not a zombie)
alive() {
    local st
    [ -n "$1" ] && st=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) &&
        [ -n "$st" ] && [ "$st" != Z ]
}

test_version_manager_shim() {
    local pid i
    fake_manager
    echo answer >"$TD/mode"
    echo /usr/bin/socat >"$TD/answer"
    PATH="$TD/shims:/usr/bin:/bin" doc 0 socat
    assertFileContains "the shim's verdict is socat's" "$TD/d.out" "^$TD/shims/socat: can be sealed: dynamically linked"
    assertFileContains "says what it followed" "$TD/d.out" \
        "^  follows: $TD/shims/socat is a pyenv shim for /usr/bin/socat \\(pyenv which socat\\)\$"
    assertEquals "the manager was asked which socat, once" "which socat" "$(cat "$TD/asked")"
    assertEquals "with the shim's PYENV_ROOT" "$TD/mgr" "$(cut -d' ' -f2 "$TD/mgr.pid")"

    # the manager fails: said, and the shim's interpreter judged
    echo fail >"$TD/mode"
    doc 0 "$TD/shims/socat"
    assertFileContains "manager failed: said" "$TD/d.out" \
        "^  note: not followed: $TD/shims/socat is a pyenv shim, but \`$TD/mgr/libexec/pyenv which socat' failed \\(pyenv: socat: command not found\\)"
    assertFileContains "manager failed: bash judged" "$TD/d.out" "^  follows: $TD/shims/socat is a #! script run by /.*bash "

    # the manager hangs: killed (its process group) after the timeout
    echo hang >"$TD/mode"
    doc 0 "$TD/shims/socat"
    assertFileContains "manager hung: said" "$TD/d.out" "which socat' did not answer in [0-9]+ s, killed"
    pid=$(cat "$TD/sleep.pid" 2>/dev/null)
    assertNotEquals "the manager started its child" "" "$pid"
    # SIGKILL is delivered at once, the exit takes a moment: wait (bounded)
    # until it is gone or a zombie
    for i in $(seq 50); do
        alive "$pid" || break
        sleep 0.1
    done
    assertFalse "the manager's child was killed with it" "alive '$pid'"
    alive "$pid" && kill "$pid"
    # a manager others may write is not run
    : >"$TD/asked"
    echo answer >"$TD/mode"
    chmod o+w "$TD/mgr/libexec/pyenv"
    doc 0 "$TD/shims/socat"
    assertFileContains "writable by others: said" "$TD/d.out" \
        "which socat' was not run \(the manager is missing, owned by another user, or writable by others\)"
    assertEquals "writable by others: not run" "" "$(cat "$TD/asked")"
    chmod o-w "$TD/mgr/libexec/pyenv"
    # not a shim (no `exec MANAGER exec`): the manager is never run
    script notshim.sh "#!/bin/sh\n\"$TD/mgr/libexec/pyenv\" exec socat\n"
    doc 0 "$TD/notshim.sh"
    assertEquals "not a shim: the manager not asked" "" "$(cat "$TD/asked")"
}

test_pyenv_shim_of_this_machine() {
    local root=${PYENV_ROOT:-$HOME/.pyenv} want
    if [ ! -x "$root/shims/python3" ] || ! grep -q 'libexec/pyenv" exec' "$root/shims/python3" ||
        ! want=$("$root/libexec/pyenv" which python3 2>/dev/null); then
        echo "no pyenv shim for python3 here ($root/shims/python3): skipped"
        startSkipping
        return 0
    fi
    want=$(readlink -f "$want")
    PATH="$root/shims:/usr/bin:/bin" doc 0 python3
    assertFileContains "found the shim on PATH" "$TD/d.out" "^$root/shims/python3: can be sealed: "
    assertFileContains "followed to the real python" "$TD/d.out" \
        "^  follows: $root/shims/python3 is a pyenv shim for $want \\(pyenv which python3\\)\$"
    assertFileNotContains "not judged by its shell" "$TD/d.out" "run by .*bash"
}

test_nothing_to_seal_and_dlopen() {
    doc 0 /usr/bin/sha256sum
    assertFileContains "sha256sum" "$TD/d.out" \
        '^/usr/bin/sha256sum: nothing to seal: it makes no socket calls \(neither it nor its libraries import socket, connect, accept or dlopen\)$'
    assertFileNotContains "not can be sealed" "$TD/d.out" 'can be sealed'
    echo 'int main(void) { return 0; }' | cbin plain || { fail "gcc failed"; return 0; }
    doc 0 "$TD/plain"
    assertFileContains "a C program without sockets" "$TD/d.out" "^$TD/plain: nothing to seal: "
    # a program that only dlopens: its socket calls may come from modules
    cbin dl <<'EOF' || { fail "gcc failed: $(cat "$TD/dl.cc.err")"; return 0; }
#include <dlfcn.h>
int main(int argc, char **argv) { return argc > 1 && dlopen(argv[1], RTLD_NOW) == 0; }
EOF
    doc 0 "$TD/dl"
    assertFileContains "dlopen: can be sealed" "$TD/d.out" \
        "^$TD/dl: can be sealed: dynamically linked against glibc \\(loader [^)]*\\); its socket calls come from modules it loads at run time \\(dlopen, imported by $TD/dl\\)\$"
    # a library that dlopens counts too; an interpreter by name as well
    cbin libdl.so -shared -fPIC <<'EOF' || { fail "gcc failed"; return 0; }
#include <dlfcn.h>
void *load(const char *f) { return dlopen(f, RTLD_NOW); }
EOF
    echo 'void *load(const char *); int main(int c, char **v) { return c > 1 && !load(v[1]); }' |
        cbin usesdl -L"$TD" -ldl -Wl,-rpath,"$TD" -l:libdl.so || { fail "gcc failed: $(cat "$TD/usesdl.cc.err")"; return 0; }
    doc 0 "$TD/usesdl"
    assertFileContains "dlopen in a library" "$TD/d.out" "modules it loads at run time \\(dlopen, imported by libdl\\.so\\)\$"
    cp "$TD/plain" "$TD/python3.99"
    doc 0 "$TD/python3.99"
    assertFileContains "an interpreter" "$TD/d.out" "^$TD/python3.99: can be sealed: .*an interpreter: its socket calls come from modules it loads at run time\$"
}

test_wrapper_loops_and_chains_bounded() {
    local i
    script a.sh "#!/bin/sh\nexec $TD/b.sh \"\$@\"\n"
    script b.sh '#!/bin/sh\nexec "$(dirname "$0")/a.sh" "$@"\n'
    doc 1 "$TD/a.sh"
    assertFileContains "a loop: cannot" "$TD/d.out" \
        "^$TD/a.sh: cannot be sealed: its scripts run each other in a loop \\($TD/a.sh is $TD/a.sh again\\)\$"
    assertFileContains "a loop: each step said" "$TD/d.out" "^  follows: $TD/b.sh is a wrapper script: it execs $TD/a.sh\$"
    # a chain of 12 wrappers in front of socat: stops after 8
    for i in $(seq 0 11); do
        script "c$i.sh" "#!/bin/sh\nexec $TD/c$((i + 1)).sh \"\$@\"\n"
    done
    script c12.sh '#!/bin/sh\nexec /usr/bin/socat "$@"\n'
    doc 1 "$TD/c0.sh"
    assertFileContains "a long chain: cannot, bounded" "$TD/d.out" \
        "^$TD/c0.sh: cannot be sealed: more than 8 scripts in a row \\(followed as far as $TD/c8.sh\\)\$"
    # control: the same chain of 5 is followed to socat
    doc 0 "$TD/c8.sh"
    assertFileContains "a short chain: socat" "$TD/d.out" "^  follows: $TD/c12.sh is a wrapper script: it execs /usr/bin/socat\$"
}

. shunit2
