#!/usr/bin/python3
"""exec_client: the client of exec_server.py (run sealed).

  exec_client.py PORT SEND_FILE OUT_FILE [--hello]

With --hello: send "HELLO" and expect "READY" first.  Then, concurrently,
send SEND_FILE and half-close, and read to the end into OUT_FILE.  Prints
"recv EOF n" on a clean end or "recv ERROR <ExceptionName> <errno> n", and
"send OK n" or "send ERROR ...".  Exit 0 only if both sides ended cleanly.
"""
import socket
import sys
import threading

port, send_file, out_file = int(sys.argv[1]), sys.argv[2], sys.argv[3]
hello = "--hello" in sys.argv[4:]
c = socket.create_connection(("127.0.0.1", port), timeout=30)
ok = True
if hello:
    c.sendall(b"HELLO")
    r = b""
    while len(r) < 5:
        d = c.recv(5 - len(r))
        if not d:
            break
        r += d
    print("hello reply %r" % r, flush=True)
    if r != b"READY":
        sys.exit(3)

send_res = []


def sender():
    try:
        data = open(send_file, "rb").read()
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)
        send_res.append("send OK %d" % len(data))
    except OSError as e:
        send_res.append("send ERROR %s %s" % (type(e).__name__, e.errno))


t = threading.Thread(target=sender)
t.start()
n = 0
rc = 0
with open(out_file, "wb") as f:
    try:
        while True:
            d = c.recv(262144)
            if not d:
                break
            f.write(d)
            n += len(d)
        print("recv EOF", n, flush=True)
    except OSError as e:
        print("recv ERROR", type(e).__name__, e.errno, n, flush=True)
        rc = 4
t.join()
print(send_res[0] if send_res else "send ERROR none", flush=True)
if not send_res or not send_res[0].startswith("send OK"):
    rc = rc or 5
c.close()
sys.exit(rc)
