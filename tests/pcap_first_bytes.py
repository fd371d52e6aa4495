#!/usr/bin/env python3
"""Print the first payload bytes each client sent to PORT in a pcap file.

usage: pcap_first_bytes.py FILE PORT   (Ethernet or Linux cooked captures)
"""
import struct
import sys


def packets(path):
    with open(path, 'rb') as f:
        hdr = f.read(24)
        magic = struct.unpack('<I', hdr[:4])[0]
        endian = '<' if magic in (0xa1b2c3d4, 0xa1b23c4d) else '>'
        linktype = struct.unpack(endian + 'I', hdr[20:24])[0]
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return
            incl = struct.unpack(endian + 'IIII', rec)[2]
            yield linktype, f.read(incl)


def tcp_payload(linktype, frame):
    if linktype == 1:       # Ethernet
        ethertype, ip = struct.unpack('!H', frame[12:14])[0], frame[14:]
    elif linktype == 113:   # Linux cooked
        ethertype, ip = struct.unpack('!H', frame[14:16])[0], frame[16:]
    else:
        return None
    if ethertype == 0x0800:
        ihl = (ip[0] & 15) * 4
        if ip[9] != 6:
            return None
        src, dst, tcp = ip[12:16], ip[16:20], ip[ihl:]
    elif ethertype == 0x86dd:
        if ip[6] != 6:
            return None
        src, dst, tcp = ip[8:24], ip[24:40], ip[40:]
    else:
        return None
    sport, dport = struct.unpack('!HH', tcp[:4])
    off = (tcp[12] >> 4) * 4
    return (src, sport, dst, dport), tcp[off:]


def main():
    path, port = sys.argv[1], int(sys.argv[2])
    seen = set()
    for lt, frame in packets(path):
        r = tcp_payload(lt, frame)
        if r is None:
            continue
        (src, sport, dst, dport), data = r
        if dport != port or not data or (src, sport) in seen:
            continue
        seen.add((src, sport))
        print('  client port %d: %s  %r' % (sport, data[:16].hex(' '), data[:4]))


main()
