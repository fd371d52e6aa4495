#!/usr/bin/python3
"""sockprog: a plain blocking-socket test program (run sealed by the tests).

  sockprog.py server HOST PORT [--count N] [--mode sink|echo|sinksource|source]
                     [--out PREFIX] [--reply FILE] [--port-file FILE]
                     [--rcvbuf N] [--wait-file F (source: read only once F exists)]
                     [--read-first (source: recv 1 byte before sending)]
  sockprog.py client HOST PORT [--send FILE] [--recv-out FILE]
                     [--mode duplex|sequential|sendonly] [--no-shut-wr]
                     [--sndbuf N] [--wait-file F (sendonly: close once F exists)]
                     [--send-api sendall|send|sendmsg] [--recv-api recv|recv_into|recvmsg]

It reports what the program saw, one line per event on stdout:
  server: "conn K: peer HOST:PORT" then "conn K: OK recv=N sha256=H sent=M" or
          "conn K: ERROR <ExceptionName> errno=<ENAME> recv=N"
  client: "connected local HOST:PORT", "connect: ERROR ...", "send: OK sent=N",
          "send: ERROR ...", "recv: OK recv=N sha256=H", "recv: ERROR ... recv=N"
Client exit status: 0 ok, 3 connect failed, 4 recv failed, 5 send failed.
The server exits 0 after N connections, whatever happened on them.
"""

import argparse
import errno
import hashlib
import os
import socket
import sys
import threading

BUF = 65536


def ename(e):
    return "%s errno=%s" % (type(e).__name__, errno.errorcode.get(e.errno, e.errno))


_say_lock = threading.Lock()


def say(*a):
    line = " ".join(str(x) for x in a) + "\n"
    with _say_lock:
        sys.stdout.write(line)
        sys.stdout.flush()


def do_send(sock, path, api):
    n = 0
    with open(path, "rb") as f:
        while True:
            d = f.read(BUF)
            if not d:
                break
            if api == "sendall":
                sock.sendall(d)
            elif api == "send":
                v = memoryview(d)
                while v:
                    k = sock.send(v)
                    v = v[k:]
            else:  # sendmsg with two iovecs
                v = memoryview(d)
                while v:
                    h = len(v) // 3
                    k = sock.sendmsg([v[:h], v[h:]])
                    v = v[k:]
            n += len(d)
    return n


def do_recv(sock, out, api, progress, prefix=b""):
    h = hashlib.sha256(prefix)
    buf = bytearray(BUF)
    while True:
        if api == "recv":
            d = sock.recv(BUF)
        elif api == "recv_into":
            k = sock.recv_into(buf)
            d = bytes(buf[:k])
        else:
            d, _, _, _ = sock.recvmsg(BUF)
        if not d:
            return h.hexdigest()
        h.update(d)
        progress[0] += len(d)
        if out:
            out.write(d)


def fam(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def addr(a):
    return "%s:%d" % (a[0], a[1])


def wait_for(path, secs=30):
    """Bounded wait for PATH to exist (a go signal from the test)."""
    import time
    end = time.monotonic() + secs
    while not os.path.exists(path) and time.monotonic() < end:
        time.sleep(0.02)


def server(a):
    ls = socket.socket(fam(a.host), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if a.rcvbuf:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, a.rcvbuf)
    ls.bind((a.host, a.port))
    ls.listen(8)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % ls.getsockname()[1])
        os.rename(a.port_file + ".tmp", a.port_file)
    say("listening %s" % addr(ls.getsockname()))
    for k in range(1, a.count + 1):
        c, peer = ls.accept()
        say("conn %d: peer %s local %s" % (k, addr(c.getpeername()), addr(c.getsockname())))
        got = [0]
        sent = 0
        out = open("%s.%d" % (a.out, k), "wb") if a.out else None
        try:
            if a.mode == "sink":
                sha = do_recv(c, out, "recv", got)
            elif a.mode == "source":
                first = b""
                if a.read_first:
                    first = c.recv(1)
                    got[0] += len(first)
                    if out:
                        out.write(first)
                sent = do_send(c, a.reply, "sendall")
                c.shutdown(socket.SHUT_WR)
                say("conn %d: half-closed" % k)
                if a.wait_file:
                    wait_for(a.wait_file)
                sha = do_recv(c, out, "recv", got, first)
            elif a.mode == "sinksource":
                sha = do_recv(c, out, "recv", got)
                sent = do_send(c, a.reply, "sendall")
            else:  # echo
                h = hashlib.sha256()
                while True:
                    d = c.recv(BUF)
                    if not d:
                        break
                    h.update(d)
                    got[0] += len(d)
                    if out:
                        out.write(d)
                    c.sendall(d)
                    sent += len(d)
                sha = h.hexdigest()
            if a.mode != "source":
                c.shutdown(socket.SHUT_WR)
            say("conn %d: OK recv=%d sha256=%s sent=%d" % (k, got[0], sha, sent))
        except OSError as e:
            say("conn %d: ERROR %s recv=%d" % (k, ename(e), got[0]))
        finally:
            if out:
                out.close()
            c.close()
    ls.close()
    return 0


def client(a):
    s = socket.socket(fam(a.host), socket.SOCK_STREAM)
    if a.sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, a.sndbuf)
    try:
        s.connect((a.host, a.port))
    except OSError as e:
        say("connect: ERROR %s" % ename(e))
        return 3
    say("connected local %s peer %s" % (addr(s.getsockname()), addr(s.getpeername())))
    out = open(a.recv_out, "wb") if a.recv_out else None
    send_rc = [0]

    def sender():
        try:
            n = do_send(s, a.send, a.send_api) if a.send else 0
            if not a.no_shut_wr:
                s.shutdown(socket.SHUT_WR)
            say("send: OK sent=%d" % n)
        except OSError as e:
            say("send: ERROR %s" % ename(e))
            send_rc[0] = 5

    if a.mode == "sendonly":
        # send, wait for the test's go signal, close without reading
        sender()
        if a.wait_file:
            wait_for(a.wait_file)
        s.close()
        say("closed")
        return send_rc[0]
    if a.mode == "sequential":
        sender()
        t = None
    else:
        t = threading.Thread(target=sender)
        t.start()
    got = [0]
    rc = 0
    try:
        sha = do_recv(s, out, a.recv_api, got)
        say("recv: OK recv=%d sha256=%s" % (got[0], sha))
    except OSError as e:
        say("recv: ERROR %s recv=%d" % (ename(e), got[0]))
        rc = 4
    if t:
        t.join()
    if out:
        out.close()
    s.close()
    return rc or send_rc[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--mode")
    p.add_argument("--out")
    p.add_argument("--reply")
    p.add_argument("--port-file")
    p.add_argument("--rcvbuf", type=int)
    p.add_argument("--wait-file")
    p.add_argument("--sndbuf", type=int)
    p.add_argument("--read-first", action="store_true")
    p.add_argument("--send")
    p.add_argument("--recv-out")
    p.add_argument("--no-shut-wr", action="store_true")
    p.add_argument("--send-api", default="sendall", choices=["sendall", "send", "sendmsg"])
    p.add_argument("--recv-api", default="recv", choices=["recv", "recv_into", "recvmsg"])
    a = p.parse_args()
    if a.role == "server":
        a.mode = a.mode or "sink"
        return server(a)
    a.mode = a.mode or "duplex"
    return client(a)


if __name__ == "__main__":
    sys.exit(main())
