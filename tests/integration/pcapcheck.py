#!/usr/bin/python3
"""pcapcheck: reassemble each TCP connection of a pcap and check it.

  pcapcheck.py FILE [--preface HEX] [--marker STR]... [--expect-marker]
               [--min-conns N] [--min-bytes N] [--json]
  pcapcheck.py FILE --wait-closed SECS

Checks (exit 1 when one fails, with a line "FAIL: ..."):
  --preface HEX    every connection's client->server stream starts with HEX
  --marker STR     STR appears in no stream (either direction) ...
  --expect-marker  ... or, for a negative control, appears in at least one
  --min-conns N    at least N connections (with a SYN) were captured
  --min-bytes N    at least N payload bytes in total were captured
--wait-closed polls FILE until every connection has ended (FIN both ways or a
RST) or SECS pass; exit 0 either way.
"""

import argparse
import json
import struct
import sys
import time


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise SystemExit("pcapcheck: %s is not a pcap file" % path)
    linktype = struct.unpack(end + "I", data[20:24])[0] & 0x0FFFFFFF
    off = 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        if off + incl > len(data):
            return  # partial record at the end (capture still running)
        yield linktype, data[off:off + incl]
        off += incl


def parse(linktype, frame):
    """-> (src, sport, dst, dport, seq, flags, payload) or None"""
    if linktype == 1:          # Ethernet
        if len(frame) < 14:
            return None
        et = struct.unpack(">H", frame[12:14])[0]
        p = frame[14:]
    elif linktype == 113:      # Linux cooked
        et = struct.unpack(">H", frame[14:16])[0]
        p = frame[16:]
    elif linktype == 276:      # Linux cooked v2
        et = struct.unpack(">H", frame[0:2])[0]
        p = frame[20:]
    elif linktype in (0, 108):  # BSD loopback
        fam = struct.unpack("<I", frame[:4])[0]
        et = 0x0800 if fam == 2 else 0x86DD
        p = frame[4:]
    elif linktype == 101:      # raw IP
        et = 0x0800 if frame[0] >> 4 == 4 else 0x86DD
        p = frame
    else:
        raise SystemExit("pcapcheck: unsupported link type %d" % linktype)
    if et == 0x0800:
        ihl = (p[0] & 0x0F) * 4
        if p[9] != 6:
            return None
        total = struct.unpack(">H", p[2:4])[0]
        src, dst = ".".join(map(str, p[12:16])), ".".join(map(str, p[16:20]))
        t = p[ihl:total]
    elif et == 0x86DD:
        if p[6] != 6:
            return None  # extension headers: not on loopback here
        plen = struct.unpack(">H", p[4:6])[0]
        src, dst = p[8:24].hex(), p[24:40].hex()
        t = p[40:40 + plen]
    else:
        return None
    sport, dport, seq = struct.unpack(">HHI", t[:8])
    doff = (t[12] >> 4) * 4
    flags = t[13]
    return src, sport, dst, dport, seq, flags, t[doff:]


FIN, SYN, RST, ACK = 1, 2, 4, 16


class Stream:
    def __init__(self):
        self.isn = None
        self.segs = {}
        self.fin = False
        self.rst = False

    def add(self, seq, flags, payload):
        if flags & SYN:
            self.isn = seq
        if flags & FIN:
            self.fin = True
        if flags & RST:
            self.rst = True
        if payload and self.isn is not None:
            rel = (seq - self.isn - 1) % (1 << 32)
            if rel not in self.segs or len(self.segs[rel]) < len(payload):
                self.segs[rel] = payload

    def data(self):
        out = bytearray()
        for rel in sorted(self.segs):
            seg = self.segs[rel]
            if rel > len(out):
                out += b"\x00" * (rel - len(out))  # gap (lost capture)
            if rel + len(seg) > len(out):
                out += seg[len(out) - rel:]
        return bytes(out)


def connections(path):
    # (client, server) -> the current {"c2s": Stream, "s2c": Stream}.  A
    # new SYN on the address pair of a connection that has ended (a reset
    # leaves no TIME_WAIT, so the port comes back at once) starts another.
    conns = {}
    order = []
    for lt, fr in packets(path):
        r = parse(lt, fr)
        if not r:
            continue
        src, sport, dst, dport, seq, flags, payload = r
        a, b = (src, sport), (dst, dport)
        syn = flags & SYN and not flags & ACK
        if syn and (a, b) in conns:
            old = conns[(a, b)]
            if old["c2s"].isn != seq and (old["c2s"].fin or old["c2s"].rst or
                                          old["s2c"].fin or old["s2c"].rst):
                del conns[(a, b)]
        if (a, b) in conns:
            conns[(a, b)]["c2s"].add(seq, flags, payload)
        elif (b, a) in conns:
            conns[(b, a)]["s2c"].add(seq, flags, payload)
        elif syn:
            conns[(a, b)] = {"c2s": Stream(), "s2c": Stream()}
            order.append(((a, b), conns[(a, b)]))
            conns[(a, b)]["c2s"].add(seq, flags, payload)
        # packets of connections whose SYN was not captured are ignored
    return order


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("--preface")
    ap.add_argument("--marker", action="append", default=[])
    ap.add_argument("--expect-marker", action="store_true")
    ap.add_argument("--min-conns", type=int, default=1)
    ap.add_argument("--min-bytes", type=int, default=1)
    ap.add_argument("--wait-closed", type=float)
    a = ap.parse_args()

    if a.wait_closed is not None:
        deadline = time.monotonic() + a.wait_closed
        while time.monotonic() < deadline:
            try:
                cs = connections(a.pcap)
            except (OSError, SystemExit, struct.error, IndexError):
                cs = []
            if cs and all((c["c2s"].fin and c["s2c"].fin) or c["c2s"].rst or c["s2c"].rst
                          for _, c in cs):
                return 0
            time.sleep(0.05)
        return 0

    cs = connections(a.pcap)
    fails = []
    total = 0
    found = {m: 0 for m in a.marker}
    for (cli, srv), c in cs:
        up, down = c["c2s"].data(), c["s2c"].data()
        total += len(up) + len(down)
        end = "RST" if (c["c2s"].rst or c["s2c"].rst) else "FIN" if c["c2s"].fin else "open"
        print("conn %s:%d -> %s:%d: client sent %d bytes, server sent %d bytes, "
              "client first bytes %s, end %s"
              % (cli[0], cli[1], srv[0], srv[1], len(up), len(down), up[:8].hex(), end))
        if a.preface and up and not up.startswith(bytes.fromhex(a.preface)):
            fails.append("connection from port %d starts with %s, not the preface %s"
                         % (cli[1], up[:8].hex(), a.preface))
        if a.preface and not up:
            fails.append("connection from port %d: the client sent nothing" % cli[1])
        for m in a.marker:
            n = up.count(m.encode()) + down.count(m.encode())
            found[m] += n
    if len(cs) < a.min_conns:
        fails.append("%d connections captured, expected at least %d" % (len(cs), a.min_conns))
    if total < a.min_bytes:
        fails.append("%d payload bytes captured, expected at least %d" % (total, a.min_bytes))
    for m, n in found.items():
        print("marker %s: %d occurrences" % (m, n))
        if a.expect_marker and n == 0:
            fails.append("marker %s not found (negative control)" % m)
        if not a.expect_marker and n:
            fails.append("plaintext marker %s found %d times on the wire" % (m, n))
    print("%d connections, %d payload bytes" % (len(cs), total))
    for f in fails:
        print("FAIL: " + f)
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
