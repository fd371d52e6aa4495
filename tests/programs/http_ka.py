#!/usr/bin/python3
"""http_ka: HTTP/1.1 keep-alive client (http.client, blocking sockets), run
sealed against the servers of 52-55.

  http_ka.py PORT [--conns N] [--rounds R] [--get PATH=FILE]... [--post PATH=FILE]...
             [--header NAME] [--pause SECS] [--timeout SECS]

N threads, each with ONE connection to 127.0.0.1:PORT, send R rounds of the
requests given (in order): GET PATH expects the bytes of FILE; POST PATH
sends FILE as the body and expects the same bytes back.  Every response body
is compared with FILE (length and sha256).  --pause: the connection stays
idle that long before each request after the first.  One line per request:
  "conn K req J: OK METHOD PATH status=200 len=N sha256=H lport=P [NAME=V]"
(NAME=V: the value of response header NAME, with --header), and per thread:
  "conn K: OK requests=M lports=L"  (L distinct local ports: 1 = keep-alive)
Any error or mismatch: "conn K req J: ERROR ..." / "conn K: FAIL"; exit 1.
"""

import argparse
import hashlib
import http.client
import sys
import threading
import time

_lock = threading.Lock()


def say(line):
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def run(k, a, ops, ok):
    c = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.timeout)
    lports, j, good = set(), 0, True
    try:
        for _ in range(a.rounds):
            for method, path, want in ops:
                if j > 0 and a.pause > 0:
                    time.sleep(a.pause)
                j += 1
                body = want if method == "POST" else None
                hdrs = {"Content-Type": "application/octet-stream"} if body is not None else {}
                c.request(method, path, body=body, headers=hdrs)
                r = c.getresponse()
                lports.add(c.sock.getsockname()[1])
                got = r.read()
                extra = ""
                if a.header:
                    extra = " %s=%s" % (a.header, r.getheader(a.header, "-"))
                h = hashlib.sha256(got).hexdigest()
                if r.status == 200 and got == want:
                    say("conn %d req %d: OK %s %s status=%d len=%d sha256=%s lport=%d%s"
                        % (k, j, method, path, r.status, len(got), h, max(lports), extra))
                else:
                    good = False
                    say("conn %d req %d: ERROR %s %s status=%d len=%d (want %d) sha256=%s%s"
                        % (k, j, method, path, r.status, len(got), len(want), h, extra))
    except Exception as e:  # report what the program saw
        good = False
        say("conn %d req %d: ERROR %s %s" % (k, j, type(e).__name__, e))
    finally:
        c.close()
    if good:
        say("conn %d: OK requests=%d lports=%d" % (k, j, len(lports)))
    else:
        say("conn %d: FAIL" % k)
    ok[k] = good


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("--conns", type=int, default=1)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--get", action="append", default=[])
    p.add_argument("--post", action="append", default=[])
    p.add_argument("--header")
    p.add_argument("--pause", type=float, default=0)
    p.add_argument("--timeout", type=float, default=30)
    a = p.parse_args()
    ops = []
    for method, specs in (("GET", a.get), ("POST", a.post)):
        for s in specs:
            path, f = s.split("=", 1)
            with open(f, "rb") as fh:
                ops.append((method, path, fh.read()))
    ok = {}
    ts = [threading.Thread(target=run, args=(k, a, ops, ok)) for k in range(1, a.conns + 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return 0 if len(ok) == a.conns and all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
