#!/usr/bin/python3
"""Run a command under a seccomp filter built the way systemd builds
SystemCallFilter= (for tests/integration/66-systemd.sh), without systemd.

    syscall_filter.py [--allow SET]... [--deny SET]... [--errno NAME:ERRNO]...
                      -- CMD [ARGS...]

SET is a system call or a systemd group (@system-service): groups are
expanded with `systemd-analyze syscall-filter`, as systemd expands them.
With --allow, only the allowed calls less the denied ones run; any other
call kills the process with SIGSYS (systemd's default action); without
--allow every call but the denied ones runs.  --errno makes one call fail
with ERRNO instead (SystemCallErrorNumber=).  The filter also sets
no_new_privs (NoNewPrivileges=), then execs CMD.  Needs python3-seccomp.
"""
import argparse
import errno
import os
import subprocess
import sys

import seccomp


def groups():
    """Every systemd group: {"@name": [entries]} (entries may be groups)."""
    out = subprocess.run(["systemd-analyze", "syscall-filter"], check=True,
                         capture_output=True, text=True).stdout
    gs, cur = {}, None
    for line in out.splitlines():
        s = line.strip()
        if line.startswith("@"):
            cur = gs.setdefault(s.split()[0], [])
        elif cur is not None and s and not s.startswith("#"):
            cur.append(s)
    return gs


def expand(name, gs):
    if not name.startswith("@"):
        return {name}
    if name not in gs:
        sys.exit("syscall_filter: unknown group %s" % name)
    out = set()
    for e in gs[name]:
        out |= expand(e, gs)
    return out


def add(f, action, name):
    """The rule, unless NAME is no system call of this architecture."""
    try:
        if seccomp.resolve_syscall(seccomp.Arch.NATIVE, name) < 0:
            return
        f.add_rule(action, name)
    except (ValueError, RuntimeError):
        pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--allow", action="append", default=[])
    ap.add_argument("--deny", action="append", default=[])
    ap.add_argument("--errno", action="append", default=[])
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    if not cmd:
        ap.error("no command")
    gs = groups()
    allow, deny = set(), set()
    for s in a.allow:
        allow |= expand(s, gs)
    for s in a.deny:
        deny |= expand(s, gs)
    errs = {}
    for e in a.errno:
        name, _, num = e.partition(":")
        errs[name] = getattr(errno, num)
    f = seccomp.SyscallFilter(seccomp.KILL_PROCESS if allow else seccomp.ALLOW)
    if allow:
        for s in sorted(allow - deny - set(errs)):
            add(f, seccomp.ALLOW, s)
    else:
        for s in sorted(deny - set(errs)):
            add(f, seccomp.KILL_PROCESS, s)
    for s, num in errs.items():
        add(f, seccomp.ERRNO(num), s)
    f.load()
    os.execvp(cmd[0], cmd)


main()
