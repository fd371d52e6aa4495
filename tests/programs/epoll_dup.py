#!/usr/bin/python3
"""epoll_dup: wait on a duplicate of an epoll fd that holds a sealed fd.

  epoll_dup.py PORT dup|dup-close

Connect to PORT (an echo server; with the shim both ends are sealed),
finish one echo, register the socket for EPOLLIN on an epoll instance, then
wait on a second fd of that same instance: os.dup() of it ("dup"), or the
dup after the original epoll fd was closed ("dup-close").  "ping" is echoed,
so the wait must report the socket's own fd with EPOLLIN, never the shim's
kernel data.  Output: "events FD:MASK ...", then "OK fd=FD" or "ERROR ...".
Exit status 0 on OK, 1 otherwise.
"""

import os
import select
import socket
import sys


def main():
    port, mode = int(sys.argv[1]), sys.argv[2]
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
    ep.register(s.fileno(), select.EPOLLIN)
    ep2 = select.epoll.fromfd(os.dup(ep.fileno()))
    if mode == "dup-close":
        ep.close()
    s.sendall(b"ping")
    evs = ep2.poll(20)
    print("events " + " ".join("%d:%#x" % (fd, m) for fd, m in evs))
    if [fd for fd, m in evs] != [s.fileno()] or not evs[0][1] & select.EPOLLIN:
        print("ERROR expected only fd %d with EPOLLIN" % s.fileno())
        return 1
    s.setblocking(True)
    got = b""
    while len(got) < 4:
        b = s.recv(4 - len(got))
        if not b:
            break
        got += b
    if got != b"ping":
        print("ERROR read %r after the event, not b'ping'" % got)
        return 1
    print("OK fd=%d" % s.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
