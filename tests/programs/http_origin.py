#!/usr/bin/python3
"""http_origin: an HTTP/1.1 origin server (ThreadingHTTPServer, a thread per
connection, keep-alive) used as the sealed backend behind the proxies of
53-varnish and 55-haproxy.

  http_origin.py PORT DIR

GET /NAME: the file DIR/NAME with Content-Length (404 if missing);
POST /echo: the request body back.  Each request logs one line on stderr:
  "origin: METHOD PATH STATUS LEN lport=P"  (P: the client's port, so a
connection reused for several requests shows the same P).
"""

import http.server
import os
import sys


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def note(self, status, n):
        sys.stderr.write("origin: %s %s %d %d lport=%d\n"
                         % (self.command, self.path, status, n, self.client_address[1]))
        sys.stderr.flush()

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.note(status, len(body))

    def do_GET(self):
        f = os.path.join(sys.argv[2], os.path.basename(self.path))
        try:
            with open(f, "rb") as fh:
                body = fh.read()
        except OSError:
            self.reply(404, b"missing\n")
            return
        self.reply(200, body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        body = b""
        while len(body) < n:
            chunk = self.rfile.read(n - len(body))
            if not chunk:
                break
            body += chunk
        self.reply(200 if len(body) == n else 400, body)


class S(http.server.ThreadingHTTPServer):
    daemon_threads = True


if __name__ == "__main__":
    S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
