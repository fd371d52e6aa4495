#!/usr/bin/python3
"""http_get: the GETs 50-apache makes with curl, for where curl cannot run.

  http_get.py PORT keepalive|parallel OUT_PREFIX PATH...

keepalive: one http.client connection to 127.0.0.1:PORT, the PATHs one
after the other on it; one line per PATH: "STATUS NEW" where NEW is 1 when
that request needed a new connection and 0 when it reused one (curl's
%{http_code} %{num_connects}).
parallel: one thread and connection per PATH, all at once; one line per
PATH, in order: "STATUS".
Body K (1-based) goes to OUT_PREFIXK.  Exit status 0 when every request
got a complete 200 (a short body raises IncompleteRead), 1 otherwise;
errors go to stderr.
"""

import http.client
import sys
import threading


def get(conn, path, out):
    conn.request("GET", path)
    r = conn.getresponse()
    body = r.read()
    with open(out, "wb") as f:
        f.write(body)
    return r.status


def keepalive(port, prefix, paths):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    ok = True
    for k, path in enumerate(paths, 1):
        new = 1 if conn.sock is None else 0
        try:
            status = get(conn, path, "%s%d" % (prefix, k))
        except Exception as e:  # report what the program saw, go on
            sys.stderr.write("GET %s: %s %s\n" % (path, type(e).__name__, e))
            conn.close()
            status = 0
        print("%03d %d" % (status, new))
        ok = ok and status == 200
    conn.close()
    return ok


def parallel(port, prefix, paths):
    res = [0] * len(paths)

    def one(k):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            res[k] = get(conn, paths[k], "%s%d" % (prefix, k + 1))
        except Exception as e:
            sys.stderr.write("GET %s: %s %s\n" % (paths[k], type(e).__name__, e))
        conn.close()

    ts = [threading.Thread(target=one, args=(k,)) for k in range(len(paths))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for status in res:
        print("%03d" % status)
    return all(s == 200 for s in res)


def main():
    port, mode, prefix, paths = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    f = keepalive if mode == "keepalive" else parallel
    return 0 if f(port, prefix, paths) else 1


if __name__ == "__main__":
    sys.exit(main())
