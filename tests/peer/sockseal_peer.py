#!/usr/bin/python3
"""sockseal_peer: an independent implementation of sockseal wire protocol v1.

Shares no code with the shim.  Built on python3-nacl (X25519, ChaCha20-Poly1305
IETF), hashlib/hmac (SHA-256, HMAC, HKDF) and, for suite 2, python3-cryptography
(AES-256-GCM) when present.

Usage:
  sockseal_peer.py --selftest VECTORS.json
  sockseal_peer.py connect HOST PORT --key FILE [options]
  sockseal_peer.py listen  HOST PORT --key FILE [--port-file FILE] [options]

Data options:
  --send FILE        send FILE as records of --chunk bytes (default 16384),
                     then the end-of-stream record (unless --truncate/--no-eos)
  --recv-out FILE    write every received byte to FILE (until end-of-stream)
  --echo             send back every received record's data; answer
                     end-of-stream with end-of-stream
  --shut-wr          after sending, also shutdown(SHUT_WR) the TCP socket
  --no-recv          do not wait for the peer's data / end-of-stream
  --early-eos        with nothing to send, send end-of-stream at once (default:
                     after the peer's end-of-stream)
  --suite 1|2        suite the initiator proposes (listen: accepted suites)
  --stats FILE       write a JSON summary (records, bytes, rekeys, result)
  --timeout SEC      socket timeout for every wait (default 30)

Hostile options (attack tests):
  --wrong-key        use a random key instead of --key
  --plaintext        skip the protocol: send --send raw, read until EOF/error
  --bad-preface      send a preface with a wrong magic
  --bad-suite        propose suite 9 (unknown)
  --bad-version      propose protocol version 2
  --flip-hs [OFF]    flip a bit of byte OFF (0..47, default 35: in the tag) of
                     handshake message 1 (connect) or 2 (listen); 0..31 is
                     the ephemeral key
  --flip-record N    flip a bit in the ciphertext of the Nth transport record
  --replay-record N  send the Nth transport record twice
  --reorder          swap the first two transport records
  --truncate         close TCP without the end-of-stream record after the data
  --bad-length [L]   after the first record, send a frame of length L (default
                     5, below the tag size; 0 is an empty frame; 16..65535 a
                     frame of that length filled with random bytes)
  --drop-record N    never send the Nth transport record
  --hs-length L      frame handshake message 1 (connect) or 2 (listen) with
                     length L; the 48 bytes follow, padded with random bytes
                     up to L
  --hs-twice         send handshake message 1 (connect) or 2 (listen) twice
  --stop-mid-record N  send the records before the Nth, then only the first
                     half of the Nth; then hold (below) and close TCP
  --hold SECS        with --stop-mid-record: read (and count) what the other
                     side sends for up to SECS, or until --go-file exists
  --go-file FILE     end --hold as soon as FILE exists
  --save-sent FILE   write every byte sent on the connection to FILE (a
                     capture to replay later with --plaintext --send FILE)
  --stall SECS       after TCP connect/accept send nothing; end when the other
                     side closes (prints what it saw) or after SECS

Exit codes:
  0 success   2 usage   3 network error (refused, reset, timeout, EOF in
  handshake)   4 handshake authentication failure or protocol refusal
  5 transport authentication failure   6 truncation (TCP EOF without the
  end-of-stream record)   7 other protocol error (bad length etc.)
  Every failure prints one line "sockseal_peer: ERROR <KIND>: <detail>" on
  stderr, KIND one of NETWORK, HANDSHAKE_AUTH, AUTH, TRUNCATED, PROTOCOL.
"""

import argparse
import base64
import errno
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import threading

from nacl import bindings as nb

PROTO_CHACHA = b"Noise_NNpsk0_25519_ChaChaPoly_SHA256"
PROTO_AESGCM = b"Noise_NNpsk0_25519_AESGCM_SHA256"
MAGIC = b"SKSL"
VERSION = 1
TAGLEN = 16
MAX_MSG = 65535
MAX_PLAIN = MAX_MSG - TAGLEN  # 65519
REKEY_EVERY = 65536
MAX_NONCE = 2 ** 64 - 1

EX_OK, EX_USAGE, EX_NET, EX_HS, EX_AUTH, EX_TRUNC, EX_PROTO = 0, 2, 3, 4, 5, 6, 7
KINDS = {EX_NET: "NETWORK", EX_HS: "HANDSHAKE_AUTH", EX_AUTH: "AUTH",
         EX_TRUNC: "TRUNCATED", EX_PROTO: "PROTOCOL"}


class PeerError(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code


class AuthFailure(Exception):
    pass


# ---------------------------------------------------------------- primitives

def sha256(data):
    return hashlib.sha256(data).digest()


def hmac_sha256(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def hkdf(ck, ikm, n):
    temp = hmac_sha256(ck, ikm)
    out1 = hmac_sha256(temp, b"\x01")
    out2 = hmac_sha256(temp, out1 + b"\x02")
    if n == 2:
        return out1, out2
    out3 = hmac_sha256(temp, out2 + b"\x03")
    return out1, out2, out3


def aesgcm_available():
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa
        return True
    except Exception:
        return False


class Cipher:
    """Noise CipherState for ChaChaPoly (suite 1) or AESGCM (suite 2)."""

    def __init__(self, suite, k=None):
        self.suite = suite
        self.k = k
        self.n = 0
        self.rekeys = 0
        self._aes = None

    def _nonce(self, n):
        if self.suite == 1:
            return b"\x00" * 4 + struct.pack("<Q", n)
        return b"\x00" * 4 + struct.pack(">Q", n)

    def _enc(self, k, n, ad, pt):
        if self.suite == 1:
            return nb.crypto_aead_chacha20poly1305_ietf_encrypt(pt, ad, self._nonce(n), k)
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
        return AESGCM(k).encrypt(self._nonce(n), pt, ad)

    def _dec(self, k, n, ad, ct):
        try:
            if self.suite == 1:
                return nb.crypto_aead_chacha20poly1305_ietf_decrypt(ct, ad, self._nonce(n), k)
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            return AESGCM(k).decrypt(self._nonce(n), ct, ad)
        except Exception as e:  # nacl.exceptions.CryptoError / InvalidTag
            raise AuthFailure("decryption failed at nonce %d: %s" % (n, type(e).__name__))

    def set_key(self, k):
        self.k = k
        self.n = 0

    def encrypt(self, ad, pt):
        if self.k is None:
            return pt
        if self.n == MAX_NONCE:
            raise PeerError(EX_PROTO, "nonce exhausted")
        ct = self._enc(self.k, self.n, ad, pt)
        self.n += 1
        return ct

    def decrypt(self, ad, ct):
        if self.k is None:
            return ct
        pt = self._dec(self.k, self.n, ad, ct)
        self.n += 1
        return pt

    def rekey(self):
        self.k = self._enc(self.k, MAX_NONCE, b"", b"\x00" * 32)[:32]
        self.rekeys += 1

    # transport with the sockseal rekey policy (DESIGN.md wire protocol 8)
    def _maybe_rekey(self):
        if self.n and self.n % REKEY_EVERY == 0:
            self.rekey()

    def t_encrypt(self, pt):
        self._maybe_rekey()
        return self.encrypt(b"", pt)

    def t_decrypt(self, ct):
        self._maybe_rekey()
        return self.decrypt(b"", ct)


class Symmetric:
    def __init__(self, protocol_name, suite):
        if len(protocol_name) <= 32:
            self.h = protocol_name + b"\x00" * (32 - len(protocol_name))
        else:
            self.h = sha256(protocol_name)
        self.ck = self.h
        self.cs = Cipher(suite)
        self.suite = suite

    def mix_hash(self, data):
        self.h = sha256(self.h + data)

    def mix_key(self, ikm):
        self.ck, k = hkdf(self.ck, ikm, 2)
        self.cs.set_key(k)

    def mix_key_and_hash(self, ikm):
        self.ck, th, k = hkdf(self.ck, ikm, 3)
        self.mix_hash(th)
        self.cs.set_key(k)

    def encrypt_and_hash(self, pt):
        ct = self.cs.encrypt(self.h, pt)
        self.mix_hash(ct)
        return ct

    def decrypt_and_hash(self, ct):
        pt = self.cs.decrypt(self.h, ct)
        self.mix_hash(ct)
        return pt

    def split(self):
        k1, k2 = hkdf(self.ck, b"", 2)
        return Cipher(self.suite, k1), Cipher(self.suite, k2)


class Handshake:
    """Noise_NNpsk0: -> psk, e   <- e, ee"""

    def __init__(self, suite, initiator, prologue, psk, e_sk=None):
        if suite not in (1, 2):
            raise ValueError("unknown suite %r" % suite)
        self.sym = Symmetric(PROTO_CHACHA if suite == 1 else PROTO_AESGCM, suite)
        self.sym.mix_hash(prologue)
        self.initiator = initiator
        self.psk = psk
        self.e_sk = e_sk if e_sk is not None else os.urandom(32)
        self.e_pk = nb.crypto_scalarmult_base(self.e_sk)
        self.re = None

    def _e_token_out(self):
        self.sym.mix_hash(self.e_pk)
        self.sym.mix_key(self.e_pk)
        return self.e_pk

    def _e_token_in(self, re):
        self.re = re
        self.sym.mix_hash(re)
        self.sym.mix_key(re)

    def write1(self, payload=b""):
        assert self.initiator
        self.sym.mix_key_and_hash(self.psk)
        out = self._e_token_out()
        return out + self.sym.encrypt_and_hash(payload)

    def read1(self, msg):
        assert not self.initiator
        if len(msg) < 32 + TAGLEN:
            raise AuthFailure("message 1 too short (%d)" % len(msg))
        self.sym.mix_key_and_hash(self.psk)
        self._e_token_in(msg[:32])
        return self.sym.decrypt_and_hash(msg[32:])

    def write2(self, payload=b""):
        assert not self.initiator
        out = self._e_token_out()
        self.sym.mix_key(nb.crypto_scalarmult(self.e_sk, self.re))
        return out + self.sym.encrypt_and_hash(payload)

    def read2(self, msg):
        assert self.initiator
        if len(msg) < 32 + TAGLEN:
            raise AuthFailure("message 2 too short (%d)" % len(msg))
        self._e_token_in(msg[:32])
        self.sym.mix_key(nb.crypto_scalarmult(self.e_sk, self.re))
        return self.sym.decrypt_and_hash(msg[32:])

    def split(self):
        c1, c2 = self.sym.split()
        # initiator sends with c1, responder with c2: (send, recv)
        return (c1, c2) if self.initiator else (c2, c1)

    @property
    def handshake_hash(self):
        return self.sym.h


def preface(suite=1, version=VERSION, magic=MAGIC):
    return magic + bytes([version, suite, 0, 0])


# ----------------------------------------------------------------- self-test

def selftest(path):
    with open(path) as f:
        data = json.load(f)
    vectors = data["vectors"] if isinstance(data, dict) else data
    names = {PROTO_CHACHA.decode(): 1}
    if aesgcm_available():
        names[PROTO_AESGCM.decode()] = 2
    done = 0
    for v in vectors:
        name = v.get("protocol_name") or v.get("name")
        if name not in names:
            continue
        suite = names[name]
        ip = bytes.fromhex(v["init_prologue"])
        rp = bytes.fromhex(v.get("resp_prologue", v["init_prologue"]))
        ipsk = bytes.fromhex(v["init_psks"][0])
        rpsk = bytes.fromhex(v.get("resp_psks", v["init_psks"])[0])
        ini = Handshake(suite, True, ip, ipsk, bytes.fromhex(v["init_ephemeral"]))
        res = Handshake(suite, False, rp, rpsk, bytes.fromhex(v["resp_ephemeral"]))
        msgs = v["messages"]
        m0 = ini.write1(bytes.fromhex(msgs[0]["payload"]))
        _check(name, "message 1", m0, msgs[0]["ciphertext"])
        _check(name, "payload 1", res.read1(m0), msgs[0]["payload"])
        m1 = res.write2(bytes.fromhex(msgs[1]["payload"]))
        _check(name, "message 2", m1, msgs[1]["ciphertext"])
        _check(name, "payload 2", ini.read2(m1), msgs[1]["payload"])
        _check(name, "handshake hash (init)", ini.handshake_hash, v["handshake_hash"])
        _check(name, "handshake hash (resp)", res.handshake_hash, v["handshake_hash"])
        isend, irecv = ini.split()
        rsend, rrecv = res.split()
        for i, m in enumerate(msgs[2:], start=3):
            pt = bytes.fromhex(m["payload"])
            if i % 2 == 1:   # messages 3, 5, ...: initiator -> responder
                ct = isend.encrypt(b"", pt)
                _check(name, "message %d" % i, ct, m["ciphertext"])
                _check(name, "payload %d" % i, rrecv.decrypt(b"", ct), m["payload"])
            else:
                ct = rsend.encrypt(b"", pt)
                _check(name, "message %d" % i, ct, m["ciphertext"])
                _check(name, "payload %d" % i, irecv.decrypt(b"", ct), m["payload"])
        # a flipped bit must fail
        bad = bytearray(m0)
        bad[40] ^= 1
        try:
            Handshake(suite, False, rp, rpsk).read1(bytes(bad))
            print("selftest: FAIL %s: flipped message 1 accepted" % name)
            return 1
        except AuthFailure:
            pass
        print("selftest: ok %s (%d messages, handshake hash %s)"
              % (name, len(msgs), v["handshake_hash"][:16]))
        done += 1
    # rekey: both sides stay in step across a 65536-record boundary
    a, b = Cipher(1, bytes(32)), Cipher(1, bytes(32))
    a.n = b.n = REKEY_EVERY - 2
    for i in range(4):
        if b.t_decrypt(a.t_encrypt(b"x%d" % i)) != b"x%d" % i:
            print("selftest: FAIL rekey round trip")
            return 1
    if a.rekeys != 1 or b.rekeys != 1 or a.n != REKEY_EVERY + 2:
        print("selftest: FAIL rekey count %d/%d n=%d" % (a.rekeys, b.rekeys, a.n))
        return 1
    exp = nb.crypto_aead_chacha20poly1305_ietf_encrypt(
        b"\x00" * 32, b"", b"\x00" * 4 + b"\xff" * 8, bytes(32))[:32]
    c = Cipher(1, bytes(32))
    c.rekey()
    if c.k != exp:
        print("selftest: FAIL rekey key")
        return 1
    print("selftest: ok rekey")
    if done == 0:
        print("selftest: FAIL no NNpsk0 vector found in %s" % path)
        return 1
    print("selftest: PASS (%d vectors)" % done)
    return 0


def _check(name, what, got, want_hex):
    if got.hex() != want_hex.lower():
        raise SystemExit("selftest: FAIL %s %s:\n  got  %s\n  want %s"
                         % (name, what, got.hex(), want_hex))


# ------------------------------------------------------------------- network

class Conn:
    def __init__(self, sock, args):
        self.sock = sock
        self.args = args
        self.rbuf = bytearray()
        self.stats = {"sent_bytes": 0, "sent_records": 0, "recv_bytes": 0,
                      "recv_records": 0, "send_rekeys": 0, "recv_rekeys": 0,
                      "eos_received": False, "eos_sent": False}
        self.send_c = None
        self.recv_c = None

    # raw helpers
    def recv_exact(self, n, where):
        while len(self.rbuf) < n:
            try:
                d = self.sock.recv(max(262144, n - len(self.rbuf)))
            except socket.timeout:
                raise PeerError(EX_NET, "timeout while reading %s" % where)
            except OSError as e:
                raise PeerError(EX_NET, "%s while reading %s"
                                % (errno.errorcode.get(e.errno, e.errno), where))
            if not d:
                return None
            self.rbuf += d
        out = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return out

    def read_frame(self, where):
        """Returns the message, or None on a clean TCP EOF at a frame boundary."""
        hdr = self.recv_exact(2, where)
        if hdr is None:
            if self.rbuf:
                raise PeerError(EX_TRUNC, "TCP EOF inside a frame header (%s)" % where)
            return None
        (n,) = struct.unpack(">H", hdr)
        body = self.recv_exact(n, where)
        if body is None:
            raise PeerError(EX_TRUNC, "TCP EOF inside a %d-byte frame (%s)" % (n, where))
        return body

    def send_raw(self, data):
        if self.args.save_sent:
            with open(self.args.save_sent, "ab") as f:
                f.write(data)
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise PeerError(EX_NET, "timeout while sending")
        except OSError as e:
            raise PeerError(EX_NET, "%s while sending" % errno.errorcode.get(e.errno, e.errno))

    # handshake
    def handshake_initiator(self, psk, suite):
        a = self.args
        pre = preface(suite)
        if a.bad_preface:
            pre = preface(suite, magic=b"SKSX")
        if a.bad_suite:
            pre = preface(9)
        if a.bad_version:
            pre = preface(suite, version=2)
        hs = Handshake(suite if suite in (1, 2) else 1, True, pre, psk)
        m1 = bytearray(hs.write1())
        if a.flip_hs is not None:
            m1[a.flip_hs] ^= 0x01
        self.send_raw(pre + hs_frame(a, m1))
        m2 = self.read_frame("handshake message 2")
        if m2 is None:
            raise PeerError(EX_NET, "connection closed by the responder during the handshake")
        if len(m2) != 48:
            raise PeerError(EX_PROTO, "message 2 has %d bytes, not 48" % len(m2))
        try:
            pl = hs.read2(m2)
        except AuthFailure as e:
            raise PeerError(EX_HS, "message 2: %s" % e)
        if pl:
            raise PeerError(EX_PROTO, "message 2 carries a payload")
        self.send_c, self.recv_c = hs.split()

    def handshake_responder(self, psk):
        a = self.args
        pre = self.recv_exact(8, "preface")
        if pre is None:
            raise PeerError(EX_NET, "connection closed before the preface")
        if pre[:5] != MAGIC + bytes([VERSION]) or pre[6:8] != b"\x00\x00":
            raise PeerError(EX_PROTO, "bad preface %s" % pre.hex())
        suite = pre[5]
        allowed = [a.suite] if a.suite_set else [1, 2] if aesgcm_available() else [1]
        if suite not in allowed:
            raise PeerError(EX_PROTO, "suite %d not accepted" % suite)
        hs = Handshake(suite, False, pre, psk)
        m1 = self.read_frame("handshake message 1")
        if m1 is None:
            raise PeerError(EX_NET, "connection closed during the handshake")
        if len(m1) != 48:
            raise PeerError(EX_PROTO, "message 1 has %d bytes, not 48" % len(m1))
        try:
            pl = hs.read1(m1)
        except AuthFailure as e:
            raise PeerError(EX_HS, "message 1: %s" % e)
        if pl:
            raise PeerError(EX_PROTO, "message 1 carries a payload")
        m2 = bytearray(hs.write2())
        if a.flip_hs is not None:
            m2[a.flip_hs] ^= 0x01
        self.send_raw(hs_frame(a, m2))
        self.send_c, self.recv_c = hs.split()
        self.stats["suite"] = suite

    # transport
    def frames_for(self, data_iter):
        """Yields framed records for the plaintext chunks, then end-of-stream,
        applying the hostile options."""
        a = self.args
        idx = 0
        held = None
        for chunk in data_iter:
            idx += 1
            ct = bytearray(self.send_c.t_encrypt(chunk))
            if a.drop_record == idx:
                continue
            self.stats["sent_records"] += 1
            self.stats["sent_bytes"] += len(chunk)
            if a.flip_record == idx:
                ct[len(ct) // 2] ^= 0x01
            fr = struct.pack(">H", len(ct)) + bytes(ct)
            if a.reorder and idx == 1:
                held = fr
                continue
            yield fr
            if held is not None:
                yield held
                held = None
            if a.replay_record == idx:
                yield fr
            if a.bad_length is not None and idx == 1:
                yield bad_frame(a.bad_length)
        if held is not None:
            yield held
        if not (a.truncate or a.no_eos):
            ct = self.send_c.t_encrypt(b"")
            self.stats["eos_sent"] = True
            yield struct.pack(">H", len(ct)) + ct
        self.stats["send_rekeys"] = self.send_c.rekeys

    def send_stream(self, data_iter):
        buf = bytearray()
        for fr in self.frames_for(data_iter):
            buf += fr
            if len(buf) >= 131072:
                self.send_raw(bytes(buf))
                buf.clear()
        if buf:
            self.send_raw(bytes(buf))

    def recv_records(self):
        """Yields decrypted chunks until end-of-stream; raises on errors."""
        while True:
            fr = self.read_frame("transport record")
            if fr is None:
                raise PeerError(EX_TRUNC, "TCP EOF without the end-of-stream record "
                                "(after %d bytes)" % self.stats["recv_bytes"])
            if len(fr) < TAGLEN:
                raise PeerError(EX_PROTO, "record of %d bytes" % len(fr))
            try:
                pt = self.recv_c.t_decrypt(fr)
            except AuthFailure as e:
                raise PeerError(EX_AUTH, "record %d: %s"
                                % (self.stats["recv_records"] + 1, e))
            self.stats["recv_rekeys"] = self.recv_c.rekeys
            if not pt:
                self.stats["eos_received"] = True
                return
            self.stats["recv_records"] += 1
            self.stats["recv_bytes"] += len(pt)
            yield pt


def hs_frame(a, msg):
    """Frame a handshake message, with the --hs-length/--hs-twice faults."""
    if a.hs_length is None:
        fr = struct.pack(">H", len(msg)) + bytes(msg)
    else:
        pad = os.urandom(max(0, a.hs_length - len(msg)))
        fr = struct.pack(">H", a.hs_length) + bytes(msg) + pad
    return fr + fr if a.hs_twice else fr


def bad_frame(n):
    """A transport frame of length N: zeros below the tag size, else noise."""
    body = b"\x00" * n if n < TAGLEN else os.urandom(n)
    return struct.pack(">H", n) + body


def stop_mid_record(c, args, result):
    """Send the records before the Nth and half of the Nth, then hold."""
    n = args.stop_mid_record
    chunks = file_chunks(args.send, args.chunk) if args.send else iter(())
    for i, chunk in enumerate(chunks, 1):
        ct = c.send_c.t_encrypt(chunk)
        fr = struct.pack(">H", len(ct)) + ct
        if i == n:
            c.send_raw(fr[:len(fr) // 2])
            break
        c.send_raw(fr)
        c.stats["sent_records"] += 1
        c.stats["sent_bytes"] += len(chunk)
    else:
        raise PeerError(EX_PROTO, "--send has fewer than %d records" % n)
    print("sockseal_peer: holding mid-record %d after %d bytes"
          % (n, c.stats["sent_bytes"]), file=sys.stderr, flush=True)
    end = hold(c, args)
    result["result"] = "stopped-" + end
    print("sockseal_peer: stopped mid-record %d after %d bytes; received %d "
          "bytes; other side: %s" % (n, c.stats["sent_bytes"],
                                     c.stats["recv_bytes"], end), file=sys.stderr)
    return EX_OK


def hold(c, args):
    """Count what the other side sends until it ends, --hold passes or
    --go-file exists.  Returns how it ended."""
    import time
    deadline = time.monotonic() + (args.hold or 0)
    out = open(args.recv_out, "wb") if args.recv_out else None
    end, frames = "hold-ended", c.recv_records()
    while time.monotonic() < deadline:
        if args.go_file and os.path.exists(args.go_file):
            end = "go"
            break
        c.sock.settimeout(max(0.01, min(0.1, deadline - time.monotonic())))
        try:
            if frames is None:
                if not c.sock.recv(65536):
                    end = "EOF"
                    break
                continue
            d = next(frames)
            if out:
                out.write(d)
        except StopIteration:
            frames = None         # its end-of-stream: hold on all the same
        except socket.timeout:
            continue
        except PeerError as e:
            if "timeout" in str(e):
                frames = c.recv_records()   # a partial frame stays buffered
                continue
            end = KINDS[e.code]
            break
        except OSError as e:
            end = errno.errorcode.get(e.errno, str(e.errno))
            break
    if out:
        out.close()
    return end


def file_chunks(path, chunk):
    with open(path, "rb") as f:
        while True:
            d = f.read(chunk)
            if not d:
                return
            yield d


def run_session(sock, args, initiator):
    c = Conn(sock, args)
    result = {"stats": c.stats}
    try:
        if args.stall:
            # say nothing; keep the connection open until the other side
            # gives up (EOF/reset) or the stall time ends
            sock.settimeout(args.stall)
            try:
                while sock.recv(65536):   # the initiator's preface + message 1
                    pass
                end = "EOF"
            except socket.timeout:
                end = "stall-ended"
            except OSError as e:
                end = errno.errorcode.get(e.errno, str(e.errno))
            result["result"] = "stalled-" + end
            print("sockseal_peer: stalled; other side: %s" % end, file=sys.stderr)
            return finish(c, args, result, EX_OK)
        if args.plaintext:
            return run_plaintext(c, args, result)
        psk = os.urandom(32) if args.wrong_key else load_key(args.key)
        if initiator:
            c.handshake_initiator(psk, args.suite)
        else:
            c.handshake_responder(psk)
        if args.stop_mid_record:
            return finish(c, args, result, stop_mid_record(c, args, result))
        err = [None]
        out = open(args.recv_out, "wb") if args.recv_out else None
        hsh = hashlib.sha256()

        if args.echo:
            q = []
            cond = threading.Condition()

            def echo_src():
                while True:
                    with cond:
                        while not q:
                            cond.wait()
                        d = q.pop(0)
                    if d is None:
                        return
                    yield d

            def sender():
                try:
                    c.send_stream(echo_src())
                    if args.shut_wr:
                        sock.shutdown(socket.SHUT_WR)
                except PeerError as e:
                    err[0] = e
            t = threading.Thread(target=sender, daemon=True)
            t.start()
            try:
                for d in c.recv_records():
                    hsh.update(d)
                    if out:
                        out.write(d)
                    with cond:
                        q.append(d)
                        cond.notify()
            finally:
                with cond:
                    q.append(None)
                    cond.notify()
            t.join(args.timeout)
        else:
            t = None
            if args.send:
                def sender():
                    try:
                        c.send_stream(file_chunks(args.send, args.chunk))
                        if args.shut_wr:
                            sock.shutdown(socket.SHUT_WR)
                    except PeerError as e:
                        err[0] = e
                t = threading.Thread(target=sender, daemon=True)
                t.start()
            elif args.early_eos and not (args.truncate or args.no_eos):
                # nothing to send: end our direction at once
                c.send_stream(iter(()))
            if not args.no_recv and not args.truncate:
                for d in c.recv_records():
                    hsh.update(d)
                    if out:
                        out.write(d)
            if not args.send and not args.early_eos and not (args.truncate or args.no_eos):
                # nothing to send: end our direction when the peer has ended its
                # (like a program that reads to EOF, then closes)
                c.send_stream(iter(()))
            if t:
                t.join(args.timeout)
                if t.is_alive():
                    raise PeerError(EX_NET, "sender did not finish")
        if out:
            out.close()
        if err[0]:
            raise err[0]
        result["recv_sha256"] = hsh.hexdigest()
        result["result"] = "ok"
        code = EX_OK
    except PeerError as e:
        result["result"] = KINDS[e.code]
        result["error"] = str(e)
        print("sockseal_peer: ERROR %s: %s" % (KINDS[e.code], e), file=sys.stderr)
        code = e.code
    return finish(c, args, result, code)


def run_plaintext(c, args, result):
    if args.send:
        with open(args.send, "rb") as f:
            c.send_raw(f.read())
    try:
        c.sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    got = bytearray()
    code = EX_OK
    while True:
        try:
            d = c.sock.recv(65536)
        except socket.timeout:
            result["end"] = "timeout"
            code = EX_NET
            break
        except OSError as e:
            result["end"] = errno.errorcode.get(e.errno, str(e.errno))
            break
        if not d:
            result["end"] = "EOF"
            break
        got += d
    if args.recv_out:
        with open(args.recv_out, "wb") as f:
            f.write(got)
    result["recv_raw_bytes"] = len(got)
    result["result"] = "plaintext-" + result.get("end", "?")
    print("sockseal_peer: plaintext session ended: %s after %d bytes received"
          % (result.get("end"), len(got)), file=sys.stderr)
    return finish(c, args, result, code)


def finish(c, args, result, code):
    s = c.stats
    print("sockseal_peer: sent %d bytes in %d records (%d rekeys), received %d bytes "
          "in %d records (%d rekeys), eos_received=%s, result=%s"
          % (s["sent_bytes"], s["sent_records"], s["send_rekeys"], s["recv_bytes"],
             s["recv_records"], s["recv_rekeys"], s["eos_received"], result["result"]),
          file=sys.stderr)
    if args.stats:
        with open(args.stats, "w") as f:
            json.dump(result, f)
    try:
        if args.truncate:
            # make sure our data is out, then end TCP without the mark
            c.sock.shutdown(socket.SHUT_WR)
            try:
                c.sock.settimeout(min(args.timeout, 10))
                while c.sock.recv(65536):
                    pass
            except OSError:
                pass
        c.sock.close()
    except OSError:
        pass
    return code


def load_key(path):
    if not path:
        raise SystemExit("sockseal_peer: --key FILE is required")
    with open(path, "rb") as f:
        txt = f.read().strip()
    k = base64.b64decode(txt, validate=True)
    if len(k) != 32:
        raise SystemExit("sockseal_peer: %s: key is %d bytes, not 32" % (path, len(k)))
    return k


def family_for(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def main(argv):
    p = argparse.ArgumentParser(description="sockseal wire protocol v1 test peer")
    p.add_argument("--selftest", metavar="VECTORS")
    p.add_argument("mode", nargs="?", choices=["connect", "listen"])
    p.add_argument("host", nargs="?")
    p.add_argument("port", nargs="?", type=int)
    p.add_argument("--key")
    p.add_argument("--send")
    p.add_argument("--recv-out")
    p.add_argument("--chunk", type=int, default=16384)
    p.add_argument("--echo", action="store_true")
    p.add_argument("--shut-wr", action="store_true")
    p.add_argument("--no-recv", action="store_true")
    p.add_argument("--no-eos", action="store_true")
    p.add_argument("--early-eos", action="store_true")
    p.add_argument("--suite", type=int, default=None)
    p.add_argument("--stats")
    p.add_argument("--port-file")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--wrong-key", action="store_true")
    p.add_argument("--plaintext", action="store_true")
    p.add_argument("--bad-preface", action="store_true")
    p.add_argument("--bad-suite", action="store_true")
    p.add_argument("--bad-version", action="store_true")
    p.add_argument("--flip-hs", type=int, nargs="?", const=35, metavar="OFF",
                   choices=range(48))
    p.add_argument("--flip-record", type=int, metavar="N")
    p.add_argument("--replay-record", type=int, metavar="N")
    p.add_argument("--reorder", action="store_true")
    p.add_argument("--truncate", action="store_true")
    p.add_argument("--bad-length", type=int, nargs="?", const=5, metavar="L")
    p.add_argument("--drop-record", type=int, metavar="N")
    p.add_argument("--hs-length", type=int, metavar="L")
    p.add_argument("--hs-twice", action="store_true")
    p.add_argument("--stop-mid-record", type=int, metavar="N")
    p.add_argument("--hold", type=float, metavar="SECS")
    p.add_argument("--go-file")
    p.add_argument("--save-sent")
    p.add_argument("--stall", type=float, metavar="SECS")
    a = p.parse_args(argv)
    if a.selftest:
        return selftest(a.selftest)
    if not a.mode or a.host is None or a.port is None:
        p.print_usage(sys.stderr)
        return EX_USAGE
    if not 1 <= a.chunk <= MAX_PLAIN:
        print("sockseal_peer: --chunk must be 1..%d" % MAX_PLAIN, file=sys.stderr)
        return EX_USAGE
    a.suite_set = a.suite is not None
    if a.suite is None:
        a.suite = 1
    if a.suite == 2 and not aesgcm_available():
        print("sockseal_peer: suite 2 needs python3-cryptography", file=sys.stderr)
        return EX_USAGE
    fam = family_for(a.host)
    if a.mode == "connect":
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.settimeout(a.timeout)
        try:
            s.connect((a.host, a.port))
        except OSError as e:
            print("sockseal_peer: ERROR NETWORK: connect: %s"
                  % errno.errorcode.get(e.errno, e), file=sys.stderr)
            return EX_NET
        la = s.getsockname()
        print("sockseal_peer: connected local %s:%d" % (la[0], la[1]), file=sys.stderr)
        return run_session(s, a, True)
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.host, a.port))
    ls.listen(4)
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % ls.getsockname()[1])
        os.rename(tmp, a.port_file)
    ls.settimeout(a.timeout)
    try:
        s, _ = ls.accept()
    except socket.timeout:
        print("sockseal_peer: ERROR NETWORK: no connection within %gs" % a.timeout,
              file=sys.stderr)
        return EX_NET
    ls.close()
    ra = s.getpeername()
    print("sockseal_peer: accepted peer %s:%d" % (ra[0], ra[1]), file=sys.stderr)
    s.settimeout(a.timeout)
    return run_session(s, a, False)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
