#!/usr/bin/python3
"""asyncio_echo: an asyncio (epoll selector) echo server and client.

  asyncio_echo.py server HOST PORT [--count N] [--greeting FILE]
  asyncio_echo.py client HOST PORT --send FILE [--send FILE]... --out PREFIX
                        [--greeting-bytes N] [--deadline SECS]

server: asyncio.start_server.  Per connection it first writes FILE when
  --greeting is given (server speaks first), then echoes what it reads, as it
  reads it, until EOF; then write_eof() and close.  It exits 0 after N
  connections, whatever happened on them.  Lines on stdout:
    "listening HOST:PORT"
    "conn K: OK recv=N sha256=H sent=M peer HOST:PORT"
    "conn K: ERROR <Exception> errno=<ENAME> recv=N"
client: one connection per --send FILE, all opened at once and all in
  flight together.  On each connection it reads the greeting (exactly N
  bytes, into PREFIX.greeting.K) before it sends anything, then one task
  writes FILE in chunks of varying size (awaiting drain) while another reads
  the echo into PREFIX.K until EOF; the writer ends with write_eof().
  Lines on stdout (K is the --send index, from 1):
    "conn K: connected local HOST:PORT peer HOST:PORT"
    "conn K: OK sent=N recv=M sha256=H"   (recv ended with a clean EOF)
    "conn K: ERROR <Exception> errno=<ENAME> sent=N recv=M"
  Exit status 0 when every connection is OK, 1 otherwise, 2 on the deadline
  (then "deadline: conn K stuck sent=N recv=M" lines say where).
"""

import argparse
import asyncio
import errno
import hashlib
import sys

CHUNKS = [65536, 1, 4096, 100000, 777, 16384, 65519, 65520, 3, 200000]


def say(*a):
    sys.stdout.write(" ".join(str(x) for x in a) + "\n")
    sys.stdout.flush()


def ename(e):
    en = getattr(e, "errno", None)
    return "%s errno=%s" % (type(e).__name__, errno.errorcode.get(en, en))


def addr(a):
    return "%s:%d" % (a[0], a[1])


async def server(a):
    greeting = open(a.greeting, "rb").read() if a.greeting else b""
    done = asyncio.Event()
    state = {"n": 0, "finished": 0}

    async def handle(reader, writer):
        state["n"] += 1
        k = state["n"]
        got = sent = 0
        h = hashlib.sha256()
        peer = writer.get_extra_info("peername")
        try:
            if greeting:
                writer.write(greeting)
                await writer.drain()
                sent += len(greeting)
            while True:
                d = await reader.read(65536)
                if not d:
                    break
                got += len(d)
                h.update(d)
                writer.write(d)
                await writer.drain()
                sent += len(d)
            writer.write_eof()
            await writer.drain()
            say("conn %d: OK recv=%d sha256=%s sent=%d peer %s"
                % (k, got, h.hexdigest(), sent, addr(peer)))
        except OSError as e:
            say("conn %d: ERROR %s recv=%d" % (k, ename(e), got))
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass
            state["finished"] += 1
            if state["finished"] >= a.count:
                done.set()

    srv = await asyncio.start_server(handle, a.host, a.port, backlog=64)
    say("listening %s" % addr(srv.sockets[0].getsockname()))
    await done.wait()
    srv.close()
    await srv.wait_closed()
    return 0


async def client(a):
    progress = {}

    async def one(k, path):
        data = open(path, "rb").read()
        st = progress[k] = {"sent": 0, "recv": 0}
        try:
            reader, writer = await asyncio.open_connection(a.host, a.port)
        except OSError as e:
            say("conn %d: ERROR %s sent=0 recv=0 (connect)" % (k, ename(e)))
            return False
        say("conn %d: connected local %s peer %s"
            % (k, addr(writer.get_extra_info("sockname")), addr(writer.get_extra_info("peername"))))
        try:
            if a.greeting_bytes:
                g = await reader.readexactly(a.greeting_bytes)
                with open("%s.greeting.%d" % (a.out, k), "wb") as f:
                    f.write(g)

            async def send():
                off, i = 0, k
                while off < len(data):
                    n = CHUNKS[i % len(CHUNKS)]
                    i += 1
                    writer.write(data[off:off + n])
                    off += len(data[off:off + n])
                    await writer.drain()
                    st["sent"] = off
                writer.write_eof()
                await writer.drain()

            async def recv():
                h = hashlib.sha256()
                with open("%s.%d" % (a.out, k), "wb") as f:
                    while True:
                        d = await reader.read(65536)
                        if not d:
                            return h.hexdigest()
                        h.update(d)
                        f.write(d)
                        st["recv"] += len(d)

            _, sha = await asyncio.gather(send(), recv())
            say("conn %d: OK sent=%d recv=%d sha256=%s" % (k, st["sent"], st["recv"], sha))
            return True
        except (OSError, asyncio.IncompleteReadError) as e:
            say("conn %d: ERROR %s sent=%d recv=%d" % (k, ename(e), st["sent"], st["recv"]))
            return False
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    tasks = [asyncio.ensure_future(one(k, p)) for k, p in enumerate(a.send, 1)]
    done, pending = await asyncio.wait(tasks, timeout=a.deadline)
    if pending:
        for k, t in enumerate(tasks, 1):
            if not t.done():
                say("deadline: conn %d stuck sent=%d recv=%d"
                    % (k, progress.get(k, {}).get("sent", 0), progress.get(k, {}).get("recv", 0)))
                t.cancel()
        return 2
    return 0 if all(t.result() for t in tasks) else 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("role", choices=["server", "client"])
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--greeting")
    p.add_argument("--send", action="append", default=[])
    p.add_argument("--out")
    p.add_argument("--greeting-bytes", type=int, default=0)
    p.add_argument("--deadline", type=float, default=40)
    a = p.parse_args()
    return asyncio.run(server(a) if a.role == "server" else client(a))


if __name__ == "__main__":
    sys.exit(main())
