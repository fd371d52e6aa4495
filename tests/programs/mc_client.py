#!/usr/bin/python3
"""mc_client: a memcached client for 45-memcached.sh (run sealed), with
pymemcache (Debian python3-pymemcache).

  mc_client.py PORT MARKER big|small [PREFIX]

big:   set a 512 KiB value (random bytes with MARKER inside) and read it back
       on the same connection and on a second one; prints "big OK <sha256>".
small: 3 connections; 200 set/get rounds, each key set on one connection
       and read back on another; then get_many of all 200 on the third;
       prints "small OK 200".
Any mismatch or error: a line "FAIL ..." and exit 1.
"""
import hashlib
import os
import sys

from pymemcache.client.base import Client

port, marker, what = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
prefix = sys.argv[4] if len(sys.argv) > 4 else ""


def client():
    return Client(("127.0.0.1", port), connect_timeout=10, timeout=30,
                  no_delay=True)


def fail(msg):
    print("FAIL", msg, flush=True)
    sys.exit(1)


if what == "big":
    size = 512 * 1024
    v = bytearray()
    while len(v) < size:
        v += marker + b"\n" + os.urandom(997)
    v = bytes(v[:size])
    a, b = client(), client()
    if not a.set(prefix + "big", v, noreply=False):
        fail("set big not stored")
    for name, c in (("same", a), ("other", b)):
        got = c.get(prefix + "big")
        if got != v:
            fail("big value read back on the %s connection: %s bytes, differs"
                 % (name, None if got is None else len(got)))
    a.close()
    b.close()
    print("big OK", hashlib.sha256(v).hexdigest(), flush=True)
elif what == "small":
    cs = [client(), client(), client()]
    vals = {}
    for i in range(200):
        k = "%sk%03d" % (prefix, i)
        v = marker + b" small %d " % i + os.urandom(1 + i % 90).hex().encode()
        vals[k] = v
        if not cs[i % 3].set(k, v, noreply=False):
            fail("set %s not stored" % k)
        got = cs[(i + 1) % 3].get(k)
        if got != v:
            fail("get %s on another connection: %r != %r" % (k, got, v))
    many = cs[2].get_many(list(vals))
    if many != vals:
        bad = [k for k in vals if many.get(k) != vals[k]]
        fail("get_many: %d keys differ (%s)" % (len(bad), bad[:5]))
    for c in cs:
        c.close()
    print("small OK", len(vals), flush=True)
else:
    fail("usage")
