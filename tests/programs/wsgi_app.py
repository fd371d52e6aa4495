"""wsgi_app: the WSGI application of 53-uwsgi (loaded by uwsgi's python3
plugin in the master, then inherited by every forked worker).

  GET /file/NAME   $WWW/NAME through wsgi.file_wrapper (uwsgi: sendfile)
  GET /bytes/NAME  $WWW/NAME read into memory, returned as one bytes object
  POST /echo       the request body back (read from wsgi.input in pieces)
Every response carries X-Worker: the pid of the worker that served it.
"""
import os

WWW = os.environ.get("WWW", ".")


def application(environ, start_response):
    method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
    hdrs = [("Content-Type", "application/octet-stream"), ("X-Worker", str(os.getpid()))]
    if method == "POST" and path == "/echo":
        n = int(environ.get("CONTENT_LENGTH") or 0)
        inp, parts, got = environ["wsgi.input"], [], 0
        while got < n:
            b = inp.read(min(65536, n - got))
            if not b:
                break
            parts.append(b)
            got += len(b)
        body = b"".join(parts)
        start_response("200 OK" if got == n else "400 Short", hdrs + [("Content-Length", str(len(body)))])
        return [body]
    for prefix in ("/file/", "/bytes/"):
        if method == "GET" and path.startswith(prefix):
            f = os.path.join(WWW, os.path.basename(path))
            if not os.path.isfile(f):
                break
            hdrs.append(("Content-Length", str(os.path.getsize(f))))
            start_response("200 OK", hdrs)
            if prefix == "/file/":
                return environ["wsgi.file_wrapper"](open(f, "rb"), 65536)
            with open(f, "rb") as fh:
                return [fh.read()]
    start_response("404 Not Found", hdrs + [("Content-Length", "4")])
    return [b"404\n"]
