#!/usr/bin/env python3
"""An independent transcription of the owner-token format (owner-token/src/lib.rs), used to
compute the golden vector the Rust tests check. Run: python3 owner-token/vectors/golden.py"""
import base64
import hashlib
import hmac
import json


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def h(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


SECRET = b"0123456789abcdef0123456789abcdef"
GAME = "3f2b8c1e-9d4a-4f6b-8e2a-1c5d7e9f0a3b"
CREATED = 1_700_000_000_000
TTL = 7 * 24 * 60 * 60 * 1000

kid = b64url(h(SECRET, b"seedsync owner-token v1 kid")[:6])
mac_key = h(SECRET, b"seedsync owner-token v1 mac")
claims = {"gid": GAME, "uid": "alice", "iat": CREATED, "exp": CREATED + TTL}
payload = json.dumps(claims, separators=(",", ":")).encode()
signing_input = f"st1.{kid}.{b64url(payload)}"
token = f"{signing_input}.{b64url(h(mac_key, signing_input.encode()))}"
print(json.dumps({"kid": kid, "token": token}, indent=2))
