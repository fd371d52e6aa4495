#!/usr/bin/python3
"""aecho: asyncio (epoll, non-blocking connect/accept) echo test program.

  aecho.py server HOST PORT --count N
      echo server; exits after N connections have ended; one line each:
      "conn K: OK recv=N" or "conn K: ERROR <Exception> errno=<ENAME> recv=N"
  aecho.py client HOST PORT --send FILE --conns N
      N concurrent connections, each sends FILE, write_eof(), reads the echo
      to EOF; "client K: OK recv=N sha256=H" or "client K: ERROR ...";
      exit 0 only if every echo matched FILE.
"""

import argparse
import asyncio
import errno
import hashlib
import sys


def ename(e):
    en = getattr(e, "errno", None)
    return "%s errno=%s" % (type(e).__name__, errno.errorcode.get(en, en))


async def server(a):
    done = asyncio.Event()
    seen = [0, 0]  # accepted, finished

    async def handle(reader, writer):
        seen[0] += 1
        k = seen[0]
        n = 0
        try:
            while True:
                d = await reader.read(65536)
                if not d:
                    break
                n += len(d)
                writer.write(d)
                await writer.drain()
            writer.write_eof()
            await writer.drain()
            print("conn %d: OK recv=%d" % (k, n), flush=True)
        except OSError as e:
            print("conn %d: ERROR %s recv=%d" % (k, ename(e), n), flush=True)
        finally:
            writer.close()
            seen[1] += 1
            if seen[1] >= a.count:
                done.set()

    srv = await asyncio.start_server(handle, a.host, a.port, reuse_address=True)
    async with srv:
        await done.wait()
    return 0


async def client(a):
    data = open(a.send, "rb").read()
    want = hashlib.sha256(data).hexdigest()

    async def one(k):
        try:
            reader, writer = await asyncio.open_connection(a.host, a.port)
        except OSError as e:
            print("client %d: ERROR connect %s" % (k, ename(e)), flush=True)
            return False
        h = hashlib.sha256()
        n = 0

        async def send():
            for i in range(0, len(data), 50000):
                writer.write(data[i:i + 50000])
                await writer.drain()
            writer.write_eof()

        try:
            t = asyncio.ensure_future(send())
            while True:
                d = await reader.read(65536)
                if not d:
                    break
                h.update(d)
                n += len(d)
            await t
            ok = h.hexdigest() == want
            print("client %d: %s recv=%d sha256=%s"
                  % (k, "OK" if ok else "MISMATCH", n, h.hexdigest()), flush=True)
            return ok
        except OSError as e:
            print("client %d: ERROR %s recv=%d" % (k, ename(e), n), flush=True)
            return False
        finally:
            writer.close()

    res = await asyncio.gather(*(one(k) for k in range(1, a.conns + 1)))
    return 0 if all(res) else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--send")
    p.add_argument("--conns", type=int, default=1)
    a = p.parse_args()
    return asyncio.run(server(a) if a.role == "server" else client(a))


if __name__ == "__main__":
    sys.exit(main())
