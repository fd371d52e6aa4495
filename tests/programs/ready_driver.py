#!/usr/bin/python3
"""ready_driver: a raw-wire sockseal peer with controlled timing, for the
readiness matrix (tests/helpers/ready_matrix.c, tests/integration/36-readiness.sh).

Never shimmed.  Speaks wire protocol v1 itself, built on the Noise classes of
the independent peer (tests/peer/sockseal_peer.py), never on the shim.

    ready_driver.py --key FILE --port-file FILE [--timeout SEC]

Listens on 127.0.0.1 for sealed data connections (port chosen by the kernel)
and on a second, plain control port; writes "DATAPORT CTLPORT" to the port
file.  Serves one control connection: one command per line, one reply line
each ("ok [WORDS]" or "err MESSAGE").  Connections are named by ID.

    accept ID          accept the next data connection (no handshake yet)
    hs1 ID             read the preface and message 1 (responder)
    msg2 ID            send message 2            badmsg2 ID   a flipped one
    hs ID              accept + hs1 + msg2
    dial ID PORT       TCP connect to 127.0.0.1:PORT (no handshake yet)
    msg1 ID            send the preface and message 1 (initiator)
    wait2 ID           read message 2
    rec ID N [CUT]     one record of N stream bytes; with CUT, send only the
                       first CUT bytes of its frame (the rest with "rest")
    rest ID            the held-back part of the last cut record
    eos ID             the end-of-stream record
    fin ID             shutdown(SHUT_WR) of the TCP connection (a bare FIN)
    recv ID N          read records until N bytes; reply "ok HEX"
    close ID           close the TCP connection
    quit

Stream bytes sent on a connection: byte at offset i is 'a' + i % 26.
"""

import argparse
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peer"))
import sockseal_peer as sp  # noqa: E402


class DConn:
    def __init__(self, sock, tmo):
        sock.settimeout(tmo)
        self.sock = sock
        self.rbuf = bytearray()
        self.hs = None
        self.pre = None
        self.send_c = None
        self.recv_c = None
        self.off = 0          # stream offset of the next byte we send
        self.held = b""

    def recv_exact(self, n):
        while len(self.rbuf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("EOF after %d of %d bytes" % (len(self.rbuf), n))
            self.rbuf += d
        out = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return out

    def frame(self):
        (n,) = struct.unpack(">H", self.recv_exact(2))
        return self.recv_exact(n)


def pattern(off, n):
    return bytes(ord("a") + (off + i) % 26 for i in range(n))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--key", required=True)
    p.add_argument("--port-file", required=True)
    p.add_argument("--timeout", type=float, default=20.0)
    a = p.parse_args()
    psk = sp.load_key(a.key)
    tmo = a.timeout

    data_l = socket.socket()
    data_l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    data_l.bind(("127.0.0.1", 0))
    data_l.listen(16)
    data_l.settimeout(tmo)
    ctl_l = socket.socket()
    ctl_l.bind(("127.0.0.1", 0))
    ctl_l.listen(1)
    ctl_l.settimeout(tmo * 3)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d %d\n" % (data_l.getsockname()[1], ctl_l.getsockname()[1]))
    os.rename(tmp, a.port_file)

    ctl, _ = ctl_l.accept()
    ctl.settimeout(tmo * 3)
    cf = ctl.makefile("rwb", buffering=0)
    conns = {}

    def reply(s):
        cf.write((s + "\n").encode())
        print("driver: -> " + s[:120], file=sys.stderr, flush=True)

    while True:
        line = cf.readline()
        if not line:
            break
        w = line.decode().split()
        print("driver: <- " + " ".join(w), file=sys.stderr, flush=True)
        if not w:
            continue
        cmd, args = w[0], w[1:]
        try:
            if cmd == "quit":
                reply("ok")
                break
            cid = args[0]
            c = conns.get(cid)
            if cmd in ("accept", "hs"):
                s, _ = data_l.accept()
                c = conns[cid] = DConn(s, tmo)
            if cmd in ("hs1", "hs"):
                c.pre = c.recv_exact(8)
                if c.pre != sp.preface(1):
                    raise ValueError("bad preface " + c.pre.hex())
                c.hs = sp.Handshake(1, False, c.pre, psk)
                m1 = c.frame()
                if len(m1) != 48 or c.hs.read1(m1) != b"":
                    raise ValueError("bad message 1")
            if cmd in ("msg2", "badmsg2", "hs"):
                m2 = bytearray(c.hs.write2())
                if cmd == "badmsg2":
                    m2[35] ^= 0x01
                c.sock.sendall(struct.pack(">H", len(m2)) + bytes(m2))
                c.send_c, c.recv_c = c.hs.split()
            elif cmd == "dial":
                s = socket.create_connection(("127.0.0.1", int(args[1])), timeout=tmo)
                c = conns[cid] = DConn(s, tmo)
            elif cmd == "msg1":
                c.pre = sp.preface(1)
                c.hs = sp.Handshake(1, True, c.pre, psk)
                m1 = c.hs.write1()
                c.sock.sendall(c.pre + struct.pack(">H", len(m1)) + m1)
            elif cmd == "wait2":
                m2 = c.frame()
                if len(m2) != 48 or c.hs.read2(m2) != b"":
                    raise ValueError("bad message 2")
                c.send_c, c.recv_c = c.hs.split()
            elif cmd == "rec":
                n = int(args[1])
                ct = c.send_c.t_encrypt(pattern(c.off, n))
                c.off += n
                fr = struct.pack(">H", len(ct)) + ct
                cut = int(args[2]) if len(args) > 2 else len(fr)
                c.sock.sendall(fr[:cut])
                c.held = fr[cut:]
            elif cmd == "rest":
                c.sock.sendall(c.held)
                c.held = b""
            elif cmd == "eos":
                ct = c.send_c.t_encrypt(b"")
                c.sock.sendall(struct.pack(">H", len(ct)) + ct)
            elif cmd == "fin":
                c.sock.shutdown(socket.SHUT_WR)
            elif cmd == "recv":
                n, got = int(args[1]), bytearray()
                while len(got) < n:
                    pt = c.recv_c.t_decrypt(c.frame())
                    if not pt:
                        raise EOFError("end-of-stream after %d bytes" % len(got))
                    got += pt
                reply("ok " + bytes(got).hex())
                continue
            elif cmd == "close":
                c.sock.close()
                del conns[cid]
            elif cmd not in ("accept", "hs1", "hs"):
                raise ValueError("unknown command " + cmd)
            reply("ok")
        except Exception as e:  # report, keep serving
            reply("err %s: %s" % (type(e).__name__, str(e).replace("\n", " ")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
