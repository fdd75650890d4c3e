#!/usr/bin/env python3
"""Independent computation of the trust crate's golden vectors (stdlib only).

Run: python3 trust/vectors/golden.py
"""
import base64
import hashlib
import hmac

SECRET = b"0123456789abcdef0123456789abcdef"


def field(value: bytes) -> bytes:
    return str(len(value)).encode() + b":" + value + b"\n"


def mac(message: bytes) -> str:
    tag = hmac.new(SECRET, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(tag).rstrip(b"=").decode()


registry = b"seedsync-registry-v1\n" + b"".join(
    field(v)
    for v in [b"eu", b"https://eu.origins.example.com", b"0.1.0", b"1700000060000"]
)
print("registry: r1." + mac(registry))

nonce = b"AAECAwQFBgcICQoLDA0ODw"
edge = b"seedsync-edge-origin-v1\n" + b"".join(
    field(v)
    for v in [b"POST", b"/api/games?region=eu", b"1700000000000", nonce, b"203.0.113.7", b"-"]
)
print("edge: v1 t=1700000000000 n=" + nonce.decode() + " s=" + mac(edge))
