#!/usr/bin/python3
"""epoll_late_add: a sealed fd registered while another thread already waits.

  epoll_late_add.py PORT

What apache's event MPM does (50-apache): the listener thread blocks in
epoll_wait on an instance that holds only unsealed fds (a pipe here, its
wakeup pipe and listener there), then a worker thread adds a sealed
connection to that same instance.  The wait already in the kernel must
report the connection with the program's own data, never the shim's.

Steps: connect to PORT (an echo server; with the shim both ends are sealed)
and finish one echo in blocking mode; thread W waits in epoll.poll() on an
instance holding a pipe; once W is inside the epoll_wait system call (read
from /proc, no sleep), the main thread registers the socket for EPOLLIN and
sends "ping"; the echo makes it readable.  Output, one line each:
  "events FD:MASK ..."     what W's wait returned
  "OK fd=FD"               W saw the socket's own fd with EPOLLIN
  "ERROR ..."              anything else (e.g. an fd number it never added)
Exit status 0 on OK, 1 otherwise.
"""

import os
import platform
import select
import socket
import sys
import threading
import time

# epoll_wait, epoll_pwait, epoll_pwait2 by machine
WAIT_SYSCALLS = {
    "x86_64": {232, 281, 441},
    "aarch64": {22, 441},       # epoll_pwait, epoll_pwait2
}


def in_epoll_wait(tid):
    """True once thread TID sleeps inside an epoll wait system call."""
    try:
        with open("/proc/self/task/%d/syscall" % tid) as f:
            words = f.read().split()
        with open("/proc/self/task/%d/stat" % tid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if not words or words[0] in ("running", "-1"):
        return False
    nrs = WAIT_SYSCALLS.get(platform.machine())
    if nrs is None:
        return state == "S"
    return int(words[0]) in nrs and state == "S"


def main():
    port = int(sys.argv[1])
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(b"hello")
    got = b""
    while len(got) < 5:
        b = s.recv(5 - len(got))
        if not b:
            print("ERROR echo server closed during the first echo")
            return 1
        got += b
    s.setblocking(False)

    ep = select.epoll()
    r, w = os.pipe()
    ep.register(r, select.EPOLLIN)
    result = {}

    def waiter():
        result["tid"] = threading.get_native_id()
        result["events"] = ep.poll(20)

    t = threading.Thread(target=waiter)
    t.start()
    deadline = time.monotonic() + 20
    while "tid" not in result or not in_epoll_wait(result["tid"]):
        if time.monotonic() > deadline or not t.is_alive():
            print("ERROR the waiting thread never blocked in epoll_wait")
            os.write(w, b"x")
            t.join()
            return 1
        time.sleep(0.001)

    ep.register(s.fileno(), select.EPOLLIN)
    s.sendall(b"ping")
    t.join()
    evs = result.get("events", [])
    print("events " + " ".join("%d:%#x" % (fd, m) for fd, m in evs))
    fds = [fd for fd, m in evs]
    if fds != [s.fileno()] or not evs[0][1] & select.EPOLLIN:
        print("ERROR expected only fd %d with EPOLLIN (pipe is fd %d)"
              % (s.fileno(), r))
        return 1
    got = b""
    s.setblocking(True)
    s.settimeout(20)
    while len(got) < 4:
        b = s.recv(4 - len(got))
        if not b:
            break
        got += b
    if got != b"ping":
        print("ERROR read %r after the event, not b'ping'" % got)
        return 1
    print("OK fd=%d" % s.fileno())
    s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
