#!/usr/bin/python3
"""sockseal_peer: an independent implementation of sockseal wire protocol v1.

Shares no code with the shim.  Built on python3-nacl (X25519, ChaCha20-Poly1305
IETF), hashlib/hmac (SHA-256, HMAC, HKDF) and, for suite 2, python3-cryptography
(AES-256-GCM) when present.

Usage:
  sockseal_peer.py --selftest VECTORS.json
  sockseal_peer.py --example                  print PROTOCOL.md's worked example
  sockseal_peer.py --example-ik               the same for identities (suites 3, 4)
  sockseal_peer.py --check-example PROTOCOL.md   recompute it (exit 1: differs)
  sockseal_peer.py connect HOST PORT --key FILE [options]
  sockseal_peer.py listen  HOST PORT --key FILE [--port-file FILE] [options]
  sockseal_peer.py forward --listen HOST:PORT --connect HOST:PORT --key FILE
                   [--sealed-side connect|listen] [--suite N] [--count N]
                   [--port-file FILE] [--timeout SEC]

Forward (a relay for programs the shim cannot reach, see PROTOCOL.md): each
connection accepted on --listen is carried to --connect; the side named by
--sealed-side (default connect: the relay is the initiator) speaks sockseal,
the other is plain TCP.  Ends of stream cross over; a failure on the sealed
side resets the plain side.  One line per connection on stderr, "forward N:
ok, ..." or "forward N: ERROR KIND: ...".  --count N: exit after N
connections (status 0 if all were ok).  Bind --listen to loopback when the
plain side listens: whatever reaches it is sent sealed.

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
  --suite 1|2|3|4    suite the initiator proposes (listen: accepted suites)
  --identity FILE    this side's private key (suites 3, 4: Noise IKpsk2)
  --peer-key KEY     connect: the responder's public key (base64 or a file);
                     listen: a public key admitted (repeat for several);
                     with --identity and no --key the PSK is 32 zero bytes
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
import fcntl
import hashlib
import hmac
import json
import os
import socket
import struct
import sys
import termios
import threading
import time

from nacl import bindings as nb

PROTO_CHACHA = b"Noise_NNpsk0_25519_ChaChaPoly_SHA256"
PROTO_AESGCM = b"Noise_NNpsk0_25519_AESGCM_SHA256"
PROTO_IK_CHACHA = b"Noise_IKpsk2_25519_ChaChaPoly_SHA256"
PROTO_IK_AESGCM = b"Noise_IKpsk2_25519_AESGCM_SHA256"
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


def aead_of(suite):
    """The AEAD of a wire suite: 1 ChaChaPoly (suites 1, 3), 2 AESGCM (2, 4)."""
    return 1 if suite in (1, 3) else 2


class IKHandshake:
    """Noise_IKpsk2 (suites 3, 4):
         <- s
         ...
         -> e, es, s, ss
         <- e, ee, se, psk
    The initiator knows the responder's static key RS from the start; the
    responder learns the initiator's from message 1 (remote_static)."""

    def __init__(self, suite, initiator, prologue, s_sk, rs, psk, e_sk=None):
        if suite not in (3, 4):
            raise ValueError("unknown identity suite %r" % suite)
        self.sym = Symmetric(PROTO_IK_CHACHA if suite == 3 else PROTO_IK_AESGCM,
                             aead_of(suite))
        self.sym.mix_hash(prologue)
        self.initiator = initiator
        self.s_sk = s_sk
        self.s_pk = nb.crypto_scalarmult_base(s_sk)
        self.rs = rs
        self.sym.mix_hash(rs if initiator else self.s_pk)   # <- s
        self.psk = psk
        self.e_sk = e_sk if e_sk is not None else os.urandom(32)
        self.e_pk = nb.crypto_scalarmult_base(self.e_sk)
        self.re = None

    def _dh(self, sk, pk):
        try:
            return nb.crypto_scalarmult(sk, pk)
        except Exception as e:
            raise AuthFailure("DH failed: %s" % type(e).__name__)

    def _e_out(self):
        self.sym.mix_hash(self.e_pk)
        self.sym.mix_key(self.e_pk)     # psk mode
        return self.e_pk

    def _e_in(self, re):
        self.re = re
        self.sym.mix_hash(re)
        self.sym.mix_key(re)

    def write1(self, payload=b""):
        assert self.initiator
        out = self._e_out()
        self.sym.mix_key(self._dh(self.e_sk, self.rs))           # es
        out += self.sym.encrypt_and_hash(self.s_pk)              # s
        self.sym.mix_key(self._dh(self.s_sk, self.rs))           # ss
        return out + self.sym.encrypt_and_hash(payload)

    def read1(self, msg):
        assert not self.initiator
        if len(msg) < 32 + 48 + TAGLEN:
            raise AuthFailure("message 1 too short (%d)" % len(msg))
        self._e_in(msg[:32])
        self.sym.mix_key(self._dh(self.s_sk, self.re))           # es
        self.rs = self.sym.decrypt_and_hash(msg[32:80])          # s
        self.sym.mix_key(self._dh(self.s_sk, self.rs))           # ss
        return self.sym.decrypt_and_hash(msg[80:])

    def write2(self, payload=b""):
        assert not self.initiator
        out = self._e_out()
        self.sym.mix_key(self._dh(self.e_sk, self.re))           # ee
        self.sym.mix_key(self._dh(self.e_sk, self.rs))           # se
        self.sym.mix_key_and_hash(self.psk)                      # psk
        return out + self.sym.encrypt_and_hash(payload)

    def read2(self, msg):
        assert self.initiator
        if len(msg) < 32 + TAGLEN:
            raise AuthFailure("message 2 too short (%d)" % len(msg))
        self._e_in(msg[:32])
        self.sym.mix_key(self._dh(self.e_sk, self.re))           # ee
        self.sym.mix_key(self._dh(self.s_sk, self.re))           # se
        self.sym.mix_key_and_hash(self.psk)                      # psk
        return self.sym.decrypt_and_hash(msg[32:])

    def split(self):
        c1, c2 = self.sym.split()
        return (c1, c2) if self.initiator else (c2, c1)

    @property
    def remote_static(self):
        return self.rs

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
    done_ik = selftest_ik(vectors)
    if done_ik < 0:
        return 1
    if done == 0:
        print("selftest: FAIL no NNpsk0 vector found in %s" % path)
        return 1
    if done_ik == 0:
        print("selftest: FAIL no IKpsk2 vector found in %s" % path)
        return 1
    done += done_ik
    print("selftest: PASS (%d vectors)" % done)
    return 0


def selftest_ik(vectors):
    """The IKpsk2 vectors (suites 3, 4): how many passed, -1 on a failure."""
    names = {PROTO_IK_CHACHA.decode(): 3}
    if aesgcm_available():
        names[PROTO_IK_AESGCM.decode()] = 4
    done = 0
    for v in vectors:
        name = v.get("protocol_name")
        if name not in names:
            continue
        suite = names[name]
        h = lambda k: bytes.fromhex(v[k])
        ini = IKHandshake(suite, True, h("init_prologue"), h("init_static"),
                          h("init_remote_static"), bytes.fromhex(v["init_psks"][0]),
                          h("init_ephemeral"))
        res = IKHandshake(suite, False, h("resp_prologue"), h("resp_static"),
                          None, bytes.fromhex(v["resp_psks"][0]), h("resp_ephemeral"))
        msgs = v["messages"]
        m0 = ini.write1(bytes.fromhex(msgs[0]["payload"]))
        _check(name, "message 1", m0, msgs[0]["ciphertext"])
        _check(name, "payload 1", res.read1(m0), msgs[0]["payload"])
        _check(name, "initiator's static key", res.remote_static,
               nb.crypto_scalarmult_base(h("init_static")).hex())
        m1 = res.write2(bytes.fromhex(msgs[1]["payload"]))
        _check(name, "message 2", m1, msgs[1]["ciphertext"])
        _check(name, "payload 2", ini.read2(m1), msgs[1]["payload"])
        _check(name, "handshake hash", ini.handshake_hash, v["handshake_hash"])
        _check(name, "handshake hash (resp)", res.handshake_hash, v["handshake_hash"])
        isend, irecv = ini.split()
        rsend, rrecv = res.split()
        for i, m in enumerate(msgs[2:], start=3):
            pt = bytes.fromhex(m["payload"])
            s, r = (isend, rrecv) if i % 2 == 1 else (rsend, irecv)
            ct = s.encrypt(b"", pt)
            _check(name, "message %d" % i, ct, m["ciphertext"])
            _check(name, "payload %d" % i, r.decrypt(b"", ct), m["payload"])
        print("selftest: ok %s (%d messages, handshake hash %s)"
              % (name, len(msgs), v["handshake_hash"][:16]))
        done += 1
    return done


def _check(name, what, got, want_hex):
    if got.hex() != want_hex.lower():
        raise SystemExit("selftest: FAIL %s %s:\n  got  %s\n  want %s"
                         % (name, what, got.hex(), want_hex))


# ----------------------------------------------------------- worked example
# PROTOCOL.md's worked example: fixed inputs, every intermediate value.
# `--example` prints the block; `--check-example PROTOCOL.md` recomputes it.

EXAMPLE_BEGIN = "<!-- worked-example: begin"
EXAMPLE_END = "<!-- worked-example: end"
EXAMPLE_PT_I = b"hello, responder"
EXAMPLE_PT_R = b"hello, initiator"


def frame(msg):
    return struct.pack(">H", len(msg)) + msg


def worked_example(suite):
    """[(name, bytes)] of the worked example for SUITE, in document order."""
    psk = bytes(range(0x00, 0x20))
    ie, re_ = bytes(range(0x20, 0x40)), bytes(range(0x40, 0x60))
    pre = preface(suite)
    h0 = Symmetric(PROTO_CHACHA if suite == 1 else PROTO_AESGCM, suite).h
    ini = Handshake(suite, True, pre, psk, ie)
    res = Handshake(suite, False, pre, psk, re_)
    v = [("psk", psk), ("init_e_private", ie), ("resp_e_private", re_),
         ("h0", h0), ("preface", pre), ("h_prologue", ini.sym.h),
         ("init_e_public", ini.e_pk), ("resp_e_public", res.e_pk)]
    m1 = ini.write1()
    res.read1(m1)
    m2 = res.write2()
    ini.read2(m2)
    isend, irecv = ini.split()
    rsend, rrecv = res.split()
    k_i = isend.k
    v += [("message1", m1), ("initiator_first_bytes", pre + frame(m1)),
          ("message2", m2), ("responder_first_bytes", frame(m2)),
          ("handshake_hash", ini.handshake_hash),
          ("k_initiator_to_responder", isend.k),
          ("k_responder_to_initiator", rsend.k)]
    rec_i = frame(isend.t_encrypt(EXAMPLE_PT_I))
    rec_r = frame(rsend.t_encrypt(EXAMPLE_PT_R))
    eos_i = frame(isend.t_encrypt(b""))
    eos_r = frame(rsend.t_encrypt(b""))
    if (rrecv.t_decrypt(rec_i[2:]) != EXAMPLE_PT_I or
            irecv.t_decrypt(rec_r[2:]) != EXAMPLE_PT_R or
            rrecv.t_decrypt(eos_i[2:]) != b"" or irecv.t_decrypt(eos_r[2:]) != b""):
        raise SystemExit("example: records do not round-trip")
    v += [("plaintext_i", EXAMPLE_PT_I), ("record_i_n0", rec_i),
          ("plaintext_r", EXAMPLE_PT_R), ("record_r_n0", rec_r),
          ("eos_i_n1", eos_i), ("eos_r_n1", eos_r)]
    # the initiator's direction across the first rekey
    c = Cipher(suite, k_i)
    c.n = REKEY_EVERY - 1
    rec_a = frame(c.t_encrypt(EXAMPLE_PT_I))
    rec_b = frame(c.t_encrypt(EXAMPLE_PT_I))
    v += [("record_i_n65535", rec_a), ("k_initiator_to_responder_rekeyed", c.k),
          ("record_i_n65536", rec_b)]
    return [("s%d.%s" % (suite, n), b) for n, b in v]


def worked_example_ik(suite):
    """[(name, bytes)] of the identity example for SUITE (3 or 4): suite 3
    without a PSK (the 32 zero bytes of a rule without key=), suite 4 with
    the PSK of the suites 1 and 2 example."""
    psk = bytes(32) if suite == 3 else bytes(range(0x00, 0x20))
    ie, re_ = bytes(range(0x20, 0x40)), bytes(range(0x40, 0x60))
    i_s, r_s = bytes(range(0x60, 0x80)), bytes(range(0x80, 0xa0))
    r_pub = nb.crypto_scalarmult_base(r_s)
    pre = preface(suite)
    sym0 = Symmetric(PROTO_IK_CHACHA if suite == 3 else PROTO_IK_AESGCM,
                     aead_of(suite))
    h0 = sym0.h
    sym0.mix_hash(pre)
    h_prologue = sym0.h
    ini = IKHandshake(suite, True, pre, i_s, r_pub, psk, ie)
    res = IKHandshake(suite, False, pre, r_s, None, psk, re_)
    v = [("psk", psk), ("init_s_private", i_s), ("resp_s_private", r_s),
         ("init_e_private", ie), ("resp_e_private", re_),
         ("init_s_public", ini.s_pk), ("resp_s_public", r_pub),
         ("h0", h0), ("preface", pre), ("h_prologue", h_prologue),
         ("h_premessage", ini.sym.h),
         ("init_e_public", ini.e_pk), ("resp_e_public", res.e_pk)]
    m1 = ini.write1()
    h1, ck1 = ini.sym.h, ini.sym.ck
    res.read1(m1)
    if res.remote_static != ini.s_pk:
        raise SystemExit("example: the responder did not learn the initiator's key")
    m2 = res.write2()
    ini.read2(m2)
    isend, irecv = ini.split()
    rsend, rrecv = res.split()
    v += [("message1", m1), ("initiator_first_bytes", pre + frame(m1)),
          ("h_message1", h1), ("ck_message1", ck1),
          ("message2", m2), ("responder_first_bytes", frame(m2)),
          ("handshake_hash", ini.handshake_hash),
          ("k_initiator_to_responder", isend.k),
          ("k_responder_to_initiator", rsend.k)]
    rec_i = frame(isend.t_encrypt(EXAMPLE_PT_I))
    rec_r = frame(rsend.t_encrypt(EXAMPLE_PT_R))
    eos_i = frame(isend.t_encrypt(b""))
    eos_r = frame(rsend.t_encrypt(b""))
    if (rrecv.t_decrypt(rec_i[2:]) != EXAMPLE_PT_I or
            irecv.t_decrypt(rec_r[2:]) != EXAMPLE_PT_R or
            rrecv.t_decrypt(eos_i[2:]) != b"" or irecv.t_decrypt(eos_r[2:]) != b""):
        raise SystemExit("example: records do not round-trip")
    v += [("plaintext_i", EXAMPLE_PT_I), ("record_i_n0", rec_i),
          ("plaintext_r", EXAMPLE_PT_R), ("record_r_n0", rec_r),
          ("eos_i_n1", eos_i), ("eos_r_n1", eos_r)]
    return [("s%d.%s" % (suite, n), b) for n, b in v]


def example_values(suite):
    return worked_example(suite) if suite in (1, 2) else worked_example_ik(suite)


def example_suites():
    return [1, 2, 3, 4] if aesgcm_available() else [1, 3]


def print_example(suites=(1, 2)):
    """The example block for SUITES (--example: 1 and 2; --example-ik: 3
    and 4), as PROTOCOL.md holds it."""
    for suite in suites:
        if suite in (2, 4) and not aesgcm_available():
            raise SystemExit("example: suites 2 and 4 need python3-cryptography")
        if suite != suites[0]:
            print()
        for name, b in example_values(suite):
            h = b.hex()
            lines = [h[i:i + 32] for i in range(0, len(h), 32)] or [""]
            print("%-36s %s" % (name, lines[0]))
            for ln in lines[1:]:
                print("%-36s %s" % ("", ln))
    return 0


def parse_example(path):
    """{name: bytes} from the worked-example block of PATH (markdown)."""
    vals, name, inside = {}, None, False
    with open(path) as f:
        for line in f:
            if line.startswith(EXAMPLE_BEGIN):
                inside = True
                continue
            if line.startswith(EXAMPLE_END):
                inside = False      # another block may follow
                continue
            if not inside or line.startswith("```") or not line.strip():
                continue
            words = line.split()
            if not line[0].isspace():
                name = words.pop(0)
                if name in vals:
                    raise SystemExit("example: %s given twice" % name)
                vals[name] = b""
            if name is None or len(words) > 1:
                raise SystemExit("example: bad line: %r" % line)
            vals[name] += bytes.fromhex(words[0]) if words else b""
    return vals


def check_example(path):
    doc = parse_example(path)
    bad = 0
    for suite in example_suites():
        for name, b in example_values(suite):
            got = doc.pop(name, None)
            if got != b:
                print("example: FAIL %s\n  document %s\n  computed %s"
                      % (name, got.hex() if got is not None else "(missing)", b.hex()))
                bad += 1
    doc = {n: b for n, b in doc.items()
           if n[:3] not in ("s2.", "s4.") or 2 in example_suites()}
    for name in doc:
        print("example: FAIL %s: not computed by this peer" % name)
        bad += 1
    if bad:
        return 1
    print("example: PASS (suites %s)" % ",".join(map(str, example_suites())))
    return 0

# ------------------------------------------------------------------- network

class Conn:
    def __init__(self, sock, args):
        self.identity = None    # suites 3, 4: this side's private key
        self.peer_keys = []     # the responder's key, or those admitted
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
        ik = suite in (3, 4)
        if ik:
            hs = IKHandshake(suite, True, pre, self.identity, self.peer_keys[0],
                             psk)
        else:
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
        if ik:
            self.stats["peer_key"] = base64.b64encode(self.peer_keys[0]).decode()

    def handshake_responder(self, psk):
        a = self.args
        pre = self.recv_exact(8, "preface")
        if pre is None:
            raise PeerError(EX_NET, "connection closed before the preface")
        if pre[:5] != MAGIC + bytes([VERSION]) or pre[6:8] != b"\x00\x00":
            raise PeerError(EX_PROTO, "bad preface %s" % pre.hex())
        suite = pre[5]
        if a.suite_set:
            allowed = [a.suite]
        elif self.identity is not None:
            allowed = [3, 4] if aesgcm_available() else [3]
        else:
            allowed = [1, 2] if aesgcm_available() else [1]
        if suite not in allowed:
            raise PeerError(EX_PROTO, "suite %d not accepted" % suite)
        ik = suite in (3, 4)
        if ik:
            hs = IKHandshake(suite, False, pre, self.identity, None, psk)
        else:
            hs = Handshake(suite, False, pre, psk)
        m1 = self.read_frame("handshake message 1")
        if m1 is None:
            raise PeerError(EX_NET, "connection closed during the handshake")
        if len(m1) != (96 if ik else 48):
            raise PeerError(EX_PROTO, "message 1 has %d bytes, not %d"
                            % (len(m1), 96 if ik else 48))
        try:
            pl = hs.read1(m1)
        except AuthFailure as e:
            raise PeerError(EX_HS, "message 1: %s" % e)
        if pl:
            raise PeerError(EX_PROTO, "message 1 carries a payload")
        if ik:
            rs = hs.remote_static
            if rs not in self.peer_keys:
                raise PeerError(EX_HS, "message 1: initiator key %s not admitted"
                                % base64.b64encode(rs).decode())
            self.stats["peer_key"] = base64.b64encode(rs).decode()
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
        c.identity = load_key(args.identity) if args.identity else None
        c.peer_keys = [load_pub(k) for k in args.peer_key or []]
        if args.suite in (3, 4) and initiator and (c.identity is None or
                                                  not c.peer_keys):
            raise SystemExit("sockseal_peer: suites 3 and 4 need --identity "
                             "and --peer-key")
        if args.wrong_key:
            psk = os.urandom(32)
        elif args.key is None and c.identity is not None:
            psk = bytes(32)     # identities without key=: the zero PSK
        else:
            psk = load_key(args.key)
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


def load_pub(arg):
    """A public key: base64 (wg pubkey's form) or a file holding it."""
    try:
        k = base64.b64decode(arg, validate=True)
        if len(k) == 32:
            return k
    except Exception:
        pass
    return load_key(arg)


def family_for(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


# ------------------------------------------------------------------ forward
# A relay for programs that cannot be sealed: each connection accepted on
# --listen is carried to --connect, one side plain, the other sealed.

def parse_hostport(s):
    """'HOST:PORT' or '[V6]:PORT' -> (host, port)."""
    if s.startswith("["):
        host, sep, port = s[1:].partition("]:")
    else:
        host, sep, port = s.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SystemExit("sockseal_peer: expected HOST:PORT or [V6]:PORT, not %r" % s)
    return host, int(port)


def drain(sock, secs=2.0):
    """Wait (bounded) until the kernel has delivered what SOCK still queues."""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            q = struct.unpack("i", fcntl.ioctl(sock, termios.TIOCOUTQ, b"\0" * 4))[0]
        except OSError:
            return
        if q == 0:
            return
        time.sleep(0.01)


def hard_close(sock):
    """Close with a TCP reset (SO_LINGER 0): the peer sees an error, never EOF."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Relay:
    """One plain socket <-> one sealed Conn.  run() returns an EX_ code."""

    def __init__(self, plain, conn):
        self.plain = plain
        self.c = conn
        self.dead = False
        self.err = None
        self.up = self.down = 0

    def _wake(self):
        # make the other direction's blocked recv() return
        for s in (self.plain, self.c.sock):
            try:
                s.shutdown(socket.SHUT_RD)
            except OSError:
                pass

    def _fail(self, e):
        if self.err is None:
            self.err = e
        self.dead = True
        self._wake()

    def _pump_up(self):
        """plain -> sealed; the plain side's EOF becomes our end-of-stream."""
        try:
            while True:
                try:
                    d = self.plain.recv(MAX_PLAIN)
                except OSError as e:
                    raise PeerError(EX_NET, "plain side: %s"
                                    % errno.errorcode.get(e.errno, e.errno))
                if self.dead:
                    return
                if not d:
                    break
                self.c.send_raw(frame(self.c.send_c.t_encrypt(d)))
                self.up += len(d)
            self._end_sealed()
        except PeerError as e:
            self._fail(e)

    def _end_sealed(self):
        """Our end-of-stream mark, then FIN.  A peer that has sent its own
        mark may have closed already: then a reset answering ours is no
        failure, the stream ended cleanly both ways."""
        try:
            self.c.send_raw(frame(self.c.send_c.t_encrypt(b"")))
            self.c.sock.shutdown(socket.SHUT_WR)
        except (PeerError, OSError) as e:
            if not self.c.stats["eos_received"]:
                self._fail(e if isinstance(e, PeerError) else PeerError(EX_NET, str(e)))

    def run(self):
        t = threading.Thread(target=self._pump_up, daemon=True)
        t.start()
        try:
            for d in self.c.recv_records():
                self.plain.sendall(d)
                self.down += len(d)
            self.plain.shutdown(socket.SHUT_WR)
        except PeerError as e:
            self._fail(e)
        except OSError as e:
            self._fail(PeerError(EX_NET, "plain side: %s"
                                 % errno.errorcode.get(e.errno, e.errno)))
        t.join()
        if self.err is not None:
            # what authenticated reaches the plain side before the reset
            drain(self.plain)
            hard_close(self.plain)
            hard_close(self.c.sock)
            return self.err
        self.plain.close()
        self.c.sock.close()
        return None


def forward_one(accepted, args, psk, n):
    """Serve one accepted connection; returns (code, message).  A sealed
    client is authenticated before the relay connects to the plain server."""
    other = None

    def dial():
        target = parse_hostport(args.connect)
        try:
            return socket.create_connection(target, timeout=args.timeout)
        except OSError as e:
            raise PeerError(EX_NET, "connect %s:%d: %s" % (target + (e,)))
    try:
        if args.sealed_side == "connect":
            other = dial()
            plain, c = accepted, Conn(other, args)
            other.settimeout(args.timeout)
            c.handshake_initiator(psk, args.suite)
        else:
            c = Conn(accepted, args)
            accepted.settimeout(args.timeout)
            c.handshake_responder(psk)
            plain = other = dial()
        c.sock.settimeout(None)
        plain.settimeout(None)
        r = Relay(plain, c)
        err = r.run()
        if err is not None:
            raise err
        return EX_OK, "forward %d: ok, %d bytes to the sealed side, %d bytes from it" \
            % (n, r.up, r.down)
    except PeerError as e:
        for s in (accepted, other):
            if s is not None:
                hard_close(s)
        return e.code, "forward %d: ERROR %s: %s" % (n, KINDS[e.code], e)


def run_forward(a):
    """forward: accept on --listen, relay each connection (in its own thread)."""
    if not a.listen or not a.connect:
        print("sockseal_peer: forward needs --listen and --connect", file=sys.stderr)
        return EX_USAGE
    psk = load_key(a.key)
    host, port = parse_hostport(a.listen)
    ls = socket.socket(family_for(host), socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(64)
    if a.port_file:
        with open(a.port_file + ".tmp", "w") as f:
            f.write("%d\n" % ls.getsockname()[1])
        os.rename(a.port_file + ".tmp", a.port_file)
    codes, lock, threads = [], threading.Lock(), []

    def serve(s, n):
        code, msg = forward_one(s, a, psk, n)
        print("sockseal_peer: " + msg, file=sys.stderr, flush=True)
        with lock:
            codes.append(code)

    n = 0
    while a.count is None or n < a.count:
        s, _ = ls.accept()
        n += 1
        t = threading.Thread(target=serve, args=(s, n), daemon=True)
        t.start()
        threads.append(t)
    ls.close()
    for t in threads:
        t.join()
    return next((c for c in codes if c != EX_OK), EX_OK)

def main(argv):
    p = argparse.ArgumentParser(description="sockseal wire protocol v1 test peer")
    p.add_argument("--selftest", metavar="VECTORS")
    p.add_argument("--example", action="store_true")
    p.add_argument("--example-ik", action="store_true")
    p.add_argument("--check-example", metavar="PROTOCOL_MD")
    p.add_argument("mode", nargs="?", choices=["connect", "listen", "forward"])
    p.add_argument("host", nargs="?")
    p.add_argument("port", nargs="?", type=int)
    p.add_argument("--key")
    p.add_argument("--identity", metavar="FILE")
    p.add_argument("--peer-key", action="append", metavar="KEY|FILE")
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
    p.add_argument("--listen", metavar="HOST:PORT")
    p.add_argument("--connect", metavar="HOST:PORT")
    p.add_argument("--sealed-side", choices=["connect", "listen"], default="connect")
    p.add_argument("--count", type=int, metavar="N")
    a = p.parse_args(argv)
    if a.selftest:
        return selftest(a.selftest)
    if a.example:
        return print_example()
    if a.example_ik:
        return print_example((3, 4))
    if a.check_example:
        return check_example(a.check_example)
    if a.mode != "forward" and (not a.mode or a.host is None or a.port is None):
        p.print_usage(sys.stderr)
        return EX_USAGE
    if not 1 <= a.chunk <= MAX_PLAIN:
        print("sockseal_peer: --chunk must be 1..%d" % MAX_PLAIN, file=sys.stderr)
        return EX_USAGE
    a.suite_set = a.suite is not None
    if a.suite is None:
        a.suite = 1
    if a.suite in (2, 4) and not aesgcm_available():
        print("sockseal_peer: suites 2 and 4 need python3-cryptography",
              file=sys.stderr)
        return EX_USAGE
    if a.mode == "forward":
        return run_forward(a)
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
