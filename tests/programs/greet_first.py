"""greet_first.py PORT: a server that speaks first and a client that writes
twice in a row, neither with TCP_NODELAY (rsync's daemon protocol, SMTP,
FTP), in one run: the server (a forked child) sends a greeting at accept;
the client reads it, writes b"a", then b"b", and the server answers b"ok"
once it has both.  Prints the answer and how many delayed ACKs this network
namespace's TCP sent meanwhile (TcpExt DelayedACKs in /proc/net/netstat).

Over plain TCP the server's greeting is no reply (nothing had arrived), so
its socket ACKs b"a" at once and Nagle lets b"b" go: none.  A socket that
counts the greeting as a reply to data it received (a handshake's) delays
that ACK, and b"b" waits for the delayed-ACK timer: one.  Run it in a
namespace of its own, where no other connection counts."""
import os
import socket
import sys


def delayed_acks():
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for head, vals in zip(lines[0::2], lines[1::2]):
        if head.startswith("TcpExt:"):
            return int(dict(zip(head.split()[1:], vals.split()[1:]))["DelayedACKs"])
    raise SystemExit("no TcpExt DelayedACKs")


def server(ls):
    c, _ = ls.accept()
    c.sendall(b"HELLO\n")
    got = b""
    while len(got) < 2:
        d = c.recv(16)
        if not d:
            break
        got += d
    c.sendall(b"ok" if got == b"ab" else b"no")
    c.recv(16)                  # until the client closes
    c.close()


def main():
    port = int(sys.argv[1])
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(1)
    pid = os.fork()
    if pid == 0:
        try:
            server(ls)
        finally:
            os._exit(0)
    ls.close()
    before = delayed_acks()
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    greeting = b""
    while not greeting.endswith(b"\n"):
        d = s.recv(16)
        if not d:
            break
        greeting += d
    s.send(b"a")
    s.send(b"b")
    reply = s.recv(16)
    after = delayed_acks()
    s.close()
    os.waitpid(pid, 0)
    print("greeting=%s reply=%s delayed_acks=%d" %
          (greeting.decode().strip(), reply.decode(), after - before))


main()
