#!/usr/bin/python3
"""pyhttp_fetch: fetch a URL with urllib.request, from several threads at once.

  pyhttp_fetch.py URL OUT_PREFIX [--count N] [--timeout SECS]

N threads each fetch URL once (urlopen with a timeout: the socket is in
timeout mode, so connect is non-blocking + poll, and every recv is preceded
by a poll) and write the body to OUT_PREFIX.K.  One line per fetch:
  "fetch K: OK status=200 len=N sha256=H"
  "fetch K: ERROR <Exception> <detail>"
Exit status 0 when every fetch is OK, 1 otherwise.
"""

import argparse
import hashlib
import sys
import threading
import urllib.request

_lock = threading.Lock()


def say(line):
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def fetch(k, a, ok):
    try:
        with urllib.request.urlopen(a.url, timeout=a.timeout) as r:
            body = r.read()
            status = r.status
        with open("%s.%d" % (a.out, k), "wb") as f:
            f.write(body)
        say("fetch %d: OK status=%d len=%d sha256=%s"
            % (k, status, len(body), hashlib.sha256(body).hexdigest()))
        ok[k] = status == 200
    except Exception as e:  # report whatever the program saw
        say("fetch %d: ERROR %s %s" % (k, type(e).__name__, e))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("out")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=20)
    a = p.parse_args()
    ok = {}
    ts = [threading.Thread(target=fetch, args=(k, a, ok)) for k in range(1, a.count + 1)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return 0 if len(ok) == a.count and all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
