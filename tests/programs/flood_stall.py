#!/usr/bin/python3
"""flood_stall: hold many stalled TCP connections to a server (never shimmed).

  flood_stall.py HOST PORT [--silent N] [--partial N] [--garbage N]
                 [--wait SECS] [--ports FILE]

Opens every connection first (blocking connect), then:
  silent   sends nothing;
  partial  sends the sockseal preface, then part of handshake message 1
           (8..57 bytes in all: never a whole message 1, so only the
           server's handshake timeout can end it);
  garbage  sends 8..57 random bytes that do not start like the preface.
Then it sends nothing more and watches every connection until the server
ends it or --wait seconds pass. It never closes one itself before that.

stdout, one line per event:
  "opened N"                          all connections are established
  "closed KIND PORT eof|reset T"      the server ended it after T seconds
  "data KIND PORT N"                  the server sent N bytes (it should not)
  "done closed=C open=O eof=E reset=R data=D"
--ports FILE gets "KIND PORT" for every connection (its local port).
Exit status: 0 if the server ended every connection, 1 if not, 2 on setup error.
"""

import argparse
import os
import random
import resource
import select
import signal
import socket
import sys
import time

PREFACE = bytes.fromhex("534b534c01010000")


def say(*a):
    print(*a, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--silent", type=int, default=300)
    ap.add_argument("--partial", type=int, default=50)
    ap.add_argument("--garbage", type=int, default=50)
    ap.add_argument("--wait", type=float, default=30.0)
    ap.add_argument("--ports")
    a = ap.parse_args()

    total = a.silent + a.partial + a.garbage
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = total + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))

    kinds = ["silent"] * a.silent + ["partial"] * a.partial + ["garbage"] * a.garbage
    conns = {}   # fd -> [sock, kind, port]
    try:
        for kind in kinds:
            s = socket.create_connection((a.host, a.port), timeout=10)
            conns[s.fileno()] = [s, kind, s.getsockname()[1]]
    except OSError as e:
        say("setup: connection %d of %d failed: %s" % (len(conns) + 1, total, e))
        return 2
    for s, kind, _ in conns.values():
        n = random.randint(8, 57)
        if kind == "partial":
            # preface, 2-byte length 48, then at most 47 of the 48 bytes
            s.sendall((PREFACE + b"\x00\x30" + os.urandom(48))[:n])
        elif kind == "garbage":
            g = bytearray(os.urandom(n))
            g[0] = 0x80 | (g[0] & 0x7F)    # never 'S': not the preface
            s.sendall(bytes(g))
    if a.ports:
        with open(a.ports, "w") as f:
            for s, kind, port in conns.values():
                f.write("%s %d\n" % (kind, port))
    t0 = time.monotonic()
    say("opened %d" % len(conns))

    ended = {"eof": 0, "reset": 0}
    data = 0
    p = select.poll()
    for fd in conns:
        p.register(fd, select.POLLIN)
    deadline = t0 + a.wait
    while conns and not stop and time.monotonic() < deadline:
        try:
            ev = p.poll(200)
        except InterruptedError:
            continue
        for fd, _ in ev:
            s, kind, port = conns[fd]
            try:
                got = s.recv(65536)
                how = None if got else "eof"
            except ConnectionResetError:
                got, how = b"", "reset"
            except BlockingIOError:
                continue
            if got:
                data += 1
                say("data %s %d %d" % (kind, port, len(got)))
                continue
            ended[how] += 1
            say("closed %s %d %s %.1f" % (kind, port, how, time.monotonic() - t0))
            p.unregister(fd)
            s.close()
            del conns[fd]
    say("done closed=%d open=%d eof=%d reset=%d data=%d"
        % (ended["eof"] + ended["reset"], len(conns), ended["eof"], ended["reset"], data))
    for s, _, _ in conns.values():
        s.close()
    return 0 if not conns else 1


if __name__ == "__main__":
    sys.exit(main())
