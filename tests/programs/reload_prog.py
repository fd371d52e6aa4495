#!/usr/bin/python3
"""reload_prog: long-running programs for the policy reload scenario (47).

  reload_prog.py server HOST PORT [--clear-env]
      threaded echo server that runs until stopped; one line per connection
      on stdout: "conn K: OK recv=N" or "conn K: ERROR <exception>".
      --clear-env empties the environment (os.environ.clear(), as daemons
      do) once listening.
  reload_prog.py hold HOST PORT --first FILE --then FILE --go FILE
      one connection: sends FILE1, reads its echo, waits (bounded) until
      the file GO exists, sends FILE2 on the same connection, shuts down
      writing, reads the rest; prints "hold: OK recv=N" when the echo
      equals FILE1+FILE2, else "hold: ERROR ...".  Exit 0 only on OK.
      Prints "hold: first echoed" once the first part came back.
  reload_prog.py loop HOST PORT --count N --pause SECS --stop FILE [--go FILE]
      up to N connections one after another, each sends 1000 bytes and
      checks their echo; "loop K: OK" or "loop K: ERROR ..."; stops early
      when the file STOP exists.  With --go, each connection waits until
      the file GO exists (at most 60 s) and removes it first: one
      connection per touch, an idle process in between.
"""

import argparse
import os
import socket
import sys
import threading
import time


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        d = s.recv(min(65536, n - len(out)))
        if not d:
            raise EOFError("EOF after %d of %d bytes" % (len(out), n))
        out += d
    return bytes(out)


def recv_all(s):
    out = bytearray()
    while True:
        d = s.recv(65536)
        if not d:
            return bytes(out)
        out += d


def server(a):
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(64)
    if a.clear_env:
        os.environ.clear()
    k = 0
    lock = threading.Lock()

    def handle(c, k):
        n = 0
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                n += len(d)
                c.sendall(d)
            c.shutdown(socket.SHUT_WR)
            with lock:
                say("conn %d: OK recv=%d" % (k, n))
        except Exception as e:
            with lock:
                say("conn %d: ERROR %r recv=%d" % (k, e, n))
        finally:
            c.close()

    while True:
        c, _ = ls.accept()
        k += 1
        threading.Thread(target=handle, args=(c, k), daemon=True).start()


def hold(a):
    first = open(a.first, "rb").read()
    then = open(a.then, "rb").read()
    try:
        s = socket.create_connection((a.host, a.port), timeout=30)
        s.sendall(first)
        got = recv_exact(s, len(first))
        say("hold: first echoed")
        for _ in range(600):
            if os.path.exists(a.go):
                break
            time.sleep(0.05)
        else:
            say("hold: ERROR no go file")
            return 1
        s.sendall(then)
        s.shutdown(socket.SHUT_WR)
        got += recv_all(s)
    except Exception as e:
        say("hold: ERROR %r" % (e,))
        return 1
    if got != first + then:
        say("hold: ERROR echo differs (recv=%d)" % len(got))
        return 1
    say("hold: OK recv=%d" % len(got))
    return 0


def loop(a):
    data = os.urandom(1000)
    for k in range(1, a.count + 1):
        if a.go:
            for _ in range(3000):
                if os.path.exists(a.go) or os.path.exists(a.stop):
                    break
                time.sleep(0.02)
            if not os.path.exists(a.go):
                break
            os.unlink(a.go)
        if os.path.exists(a.stop):
            break
        try:
            s = socket.create_connection((a.host, a.port), timeout=10)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got = recv_all(s)
            s.close()
            say("loop %d: %s" % (k, "OK" if got == data else
                                 "ERROR echo differs (recv=%d)" % len(got)))
        except Exception as e:
            say("loop %d: ERROR %r" % (k, e))
        if not a.go:
            time.sleep(a.pause)
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["server", "hold", "loop"])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--clear-env", action="store_true")
    p.add_argument("--first")
    p.add_argument("--then")
    p.add_argument("--go")
    p.add_argument("--count", type=int, default=100)
    p.add_argument("--pause", type=float, default=0.2)
    p.add_argument("--stop", default="/nonexistent")
    a = p.parse_args()
    return {"server": server, "hold": hold, "loop": loop}[a.mode](a) or 0


if __name__ == "__main__":
    sys.exit(main())
