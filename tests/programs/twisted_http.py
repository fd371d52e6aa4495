#!/usr/bin/python3
"""twisted_http: a Twisted (epoll reactor) HTTP server and client for
54-twisted (Debian python3-twisted).

  twisted_http.py server PORT DIR
      GET /files/NAME: DIR/NAME by twisted.web.static.File (a push producer
      writing 64 KiB pieces, paused when the transport's buffer is full);
      POST /echo: the body back.  Prints "server: listening" once bound and
      "server: stopped" after a clean reactor shutdown (SIGTERM).
  twisted_http.py client PORT CONNS ROUNDS PATH=FILE...
      An Agent with a persistent HTTPConnectionPool (at most CONNS
      connections), CONNS request chains at once, each doing ROUNDS rounds
      of GET PATH (POST if PATH is /echo, sending FILE) and comparing the body
      with FILE.  Prints "chain K req J: OK ..." / "... ERROR ...", then
      "client: OK N requests" or "client: FAIL"; exit status 0 / 1.
"""
import hashlib
import io
import os
import sys

from twisted.internet import epollreactor

epollreactor.install()

from twisted.internet import defer, reactor  # noqa: E402
from twisted.web import client, resource, server, static  # noqa: E402
from twisted.web.http_headers import Headers  # noqa: E402


class Echo(resource.Resource):
    isLeaf = True

    def render_POST(self, request):
        body = request.content.read()
        request.setHeader(b"content-type", b"application/octet-stream")
        return body


def serve(port, root):
    top = resource.Resource()
    top.putChild(b"files", static.File(root))
    top.putChild(b"echo", Echo())
    reactor.listenTCP(port, server.Site(top), interface="127.0.0.1")
    reactor.addSystemEventTrigger("after", "shutdown",
                                  lambda: print("server: stopped", flush=True))
    print("server: listening pid=%d" % os.getpid(), flush=True)
    reactor.run()
    return 0


@defer.inlineCallbacks
def chain(k, agent, port, rounds, ops, res):
    j = 0
    for _ in range(rounds):
        for path, want in ops:
            j += 1
            url = b"http://127.0.0.1:%d%s" % (port, path.encode())
            try:
                if path == "/echo":
                    r = yield agent.request(b"POST", url, Headers(),
                                            client.FileBodyProducer(io.BytesIO(want)))
                else:
                    r = yield agent.request(b"GET", url)
                got = yield client.readBody(r)
            except Exception as e:  # report what the program saw
                print("chain %d req %d: ERROR %s %s" % (k, j, type(e).__name__, e), flush=True)
                res.append(False)
                continue
            ok = r.code == 200 and got == want
            print("chain %d req %d: %s %s status=%d len=%d sha256=%s"
                  % (k, j, "OK" if ok else "ERROR", path, r.code, len(got),
                     hashlib.sha256(got).hexdigest()), flush=True)
            res.append(ok)


def fetch(port, conns, rounds, specs):
    ops = []
    for s in specs:
        path, f = s.split("=", 1)
        with open(f, "rb") as fh:
            ops.append((path, fh.read()))
    pool = client.HTTPConnectionPool(reactor, persistent=True)
    pool.maxPersistentPerHost = conns
    agent = client.Agent(reactor, pool=pool, connectTimeout=20)
    res = []
    d = defer.gatherResults([chain(k, agent, port, rounds, ops, res)
                             for k in range(1, conns + 1)])
    d.addBoth(lambda _: pool.closeCachedConnections())
    d.addBoth(lambda _: reactor.stop())
    reactor.callLater(50, reactor.stop)
    reactor.run()
    good = len(res) == conns * rounds * len(ops) and all(res)
    print("client: OK %d requests" % len(res) if good else "client: FAIL", flush=True)
    return 0 if good else 1


if __name__ == "__main__":
    if sys.argv[1] == "server":
        sys.exit(serve(int(sys.argv[2]), sys.argv[3]))
    sys.exit(fetch(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]))
