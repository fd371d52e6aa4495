#!/usr/bin/env python3
"""burst.py: a burst, a pause, a small message -- for buffer-trim tests.

  burst.py serve PORT                one connection: read BYTES (first line
                                     "BYTES N"), answer "ok1", read "ping",
                                     answer "ok2", read to EOF, answer "bye"
  burst.py send PORT N PAUSE GOFILE  send N bytes, wait for ok1, sleep PAUSE,
                                     send "ping", wait for ok2, then wait
                                     (30 s at most) for GOFILE before closing

Each side prints its pid first, then its progress lines on stdout ("sent ...", "got ok1", ...),
so the test can read the process's memory at each step.  Data is checked:
the server verifies the byte pattern and prints "bad data" on a mismatch.
"""
import os
import socket
import sys
import time


def pattern(off, n):
    return bytes((off + i) * 31 % 251 for i in range(n))


def readline(c, buf):
    while b"\n" not in buf:
        b = c.recv(65536)
        if not b:
            raise EOFError("eof before a line")
        buf += b
    line, _, rest = buf.partition(b"\n")
    return line.decode(), rest


def serve(port):
    print("pid", os.getpid(), flush=True)
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    print("listening", flush=True)
    c, _ = ls.accept()
    line, buf = readline(c, b"")
    want = int(line.split()[1])
    ref = pattern(0, 251) * (want // 251 + 2)
    got = 0
    while got < want:
        if not buf:
            buf = c.recv(262144)
            if not buf:
                print("eof early", flush=True)
                return 1
        take = buf[:want - got]
        if take != ref[got % 251:got % 251 + len(take)]:
            print("bad data", flush=True)
            return 1
        got += len(take)
        buf = buf[len(take):]
    c.sendall(b"ok1\n")
    print("got", got, flush=True)
    line, buf = readline(c, buf)
    print("got", line, flush=True)
    c.sendall(b"ok2\n")
    while c.recv(65536):
        pass
    print("bye", flush=True)
    return 0


def send(port, n, pause, gofile):
    print("pid", os.getpid(), flush=True)
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"BYTES %d\n" % n)
    block = pattern(0, 251) * 1024
    sent = 0
    while sent < n:
        k = min(len(block) - sent % 251, n - sent)
        c.sendall(block[sent % 251:sent % 251 + k])
        sent += k
    print("sent", sent, flush=True)
    line, buf = readline(c, b"")
    print("got", line, flush=True)
    time.sleep(pause)
    c.sendall(b"ping\n")
    line, buf = readline(c, buf)
    print("got", line, flush=True)
    for _ in range(600):
        if os.path.exists(gofile):
            break
        time.sleep(0.05)
    c.close()
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        sys.exit(serve(int(sys.argv[2])))
    sys.exit(send(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]),
                  sys.argv[5]))
