#!/usr/bin/python3
"""exec_server: a one-connection server that hands the connection to an
exec'd program (run sealed by tests/integration/43-exec.sh).

  exec_server.py PORT inetd CMD...
      accept, dup2 the connection onto fds 0 and 1, exec CMD (inetd style;
      no byte moves on the connection before exec)
  exec_server.py PORT after-io CMD...
      accept, recv exactly 5 bytes ("HELLO"), send "READY", then as inetd:
      the connection has carried sealed bytes before exec
  exec_server.py PORT bystander
      accept, recv 5 bytes, send "READY", run `sh -c 'exit 0'` as a child
      that inherits the connection fd (never touches it) and wait for it,
      then echo everything else to the end and close

Prints "accepted" (and for bystander "child exited N" and
"echo OK n" / "echo ERROR <ExceptionName> <errno> n") on stdout.
"""
import os
import socket
import subprocess
import sys


def recv_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            break
        b += d
    return b


def main():
    port, mode, cmd = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    c, _ = ls.accept()
    ls.close()
    print("accepted", flush=True)
    if mode in ("after-io", "bystander"):
        got = recv_exact(c, 5)
        if got != b"HELLO":
            print("bad hello %r" % got, flush=True)
            sys.exit(1)
        c.sendall(b"READY")
    if mode in ("inetd", "after-io"):
        fd = c.fileno()
        os.dup2(fd, 0)
        os.dup2(fd, 1)
        c.close()
        sys.stdout.flush()
        os.execvp(cmd[0], cmd)
    # bystander
    p = subprocess.Popen(["/bin/sh", "-c", "exit 0"], pass_fds=(c.fileno(),),
                         stdin=subprocess.DEVNULL)
    print("child exited", p.wait(), flush=True)
    n = 0
    try:
        while True:
            d = c.recv(262144)
            if not d:
                break
            c.sendall(d)
            n += len(d)
        c.shutdown(socket.SHUT_WR)
    except OSError as e:
        print("echo ERROR", type(e).__name__, e.errno, n, flush=True)
        sys.exit(1)
    print("echo OK", n, flush=True)
    c.close()


main()
