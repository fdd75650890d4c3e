#!/usr/bin/env python3
"""Calls an origin as the edge does: each request signed with EDGE_ORIGIN_SECRET (trust::edge_auth).

For tests and trusted internal tools that must reach the public API of an origin in production
mode (SEEDSYNC_ENV=production answers 403 to anything the edge did not sign). Standard library only.

  edge-sign.py --self-test
      signs trust's golden request and compares with the GOLDEN constant in
      trust/src/edge_auth.rs (so this signer cannot drift from the Rust one unnoticed)
  edge-sign.py call --secret-file F METHOD URL [JSON_BODY] [--bearer TOKEN] [--client IP] [--user ID]
      one signed request; prints the HTTP status on the first line and the body after it

The header: `x-seedsync-edge-signature: v1 t=<unix ms> n=<nonce> s=<base64url HMAC-SHA256>` over
`seedsync-edge-origin-v1\\n` and, each as `<length>:<bytes>\\n`, the method, the path with its
query, the timestamp, the nonce, the client address and the user (`-` or `+<id>`).
"""

import argparse
import base64
import hashlib
import hmac
import os
import re
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

DOMAIN = b"seedsync-edge-origin-v1\n"


def _field(value):
    return str(len(value)).encode() + b":" + value + b"\n"


def sign(secret, method, path_and_query, client_address, user_id, timestamp_ms, nonce):
    """The header value, as trust::edge_auth::sign makes it."""
    user = "-" if user_id is None else "+" + user_id
    message = DOMAIN + b"".join(
        _field(v.encode())
        for v in (method.upper(), path_and_query, str(timestamp_ms), nonce, client_address, user)
    )
    tag = hmac.new(secret, message, hashlib.sha256).digest()
    s = base64.urlsafe_b64encode(tag).rstrip(b"=").decode()
    return f"v1 t={timestamp_ms} n={nonce} s={s}"


def self_test():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    source = open(os.path.join(root, "trust/src/edge_auth.rs"), encoding="utf-8").read()
    found = re.search(r'const GOLDEN: &str =\s*"([^"]+)"', source)
    if not found:
        sys.exit("edge-sign: no GOLDEN constant in trust/src/edge_auth.rs")
    got = sign(b"0123456789abcdef0123456789abcdef", "POST", "/api/games?region=eu",
               "203.0.113.7", None, 1_700_000_000_000, "AAECAwQFBgcICQoLDA0ODw")
    if got != found.group(1):
        sys.exit(f"edge-sign: golden vector mismatch:\n  rust   {found.group(1)}\n  python {got}")
    print("edge-sign: golden vector ok")


def call(args):
    with open(args.secret_file, "rb") as f:
        secret = f.read().strip()
    url = urllib.parse.urlsplit(args.url)
    path = url.path + ("?" + url.query if url.query else "")
    # 16 random bytes: 22 base64url characters, inside the 16..64 the origin accepts.
    nonce = base64.urlsafe_b64encode(secrets.token_bytes(16)).rstrip(b"=").decode()
    headers = {
        "x-seedsync-edge-signature": sign(secret, args.method, path, args.client, args.user,
                                          int(time.time() * 1000), nonce),
        "x-seedsync-client-address": args.client,
        "x-seedsync-user-id": "-" if args.user is None else "+" + args.user,
    }
    data = None
    if args.body is not None:
        data = args.body.encode()
        headers["content-type"] = "application/json"
    if args.bearer:
        headers["authorization"] = "Bearer " + args.bearer
    request = urllib.request.Request(args.url, data=data, method=args.method.upper(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    print(status)
    print(body.decode(errors="replace"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--self-test", action="store_true")
    sub = parser.add_subparsers(dest="command")
    c = sub.add_parser("call")
    c.add_argument("--secret-file", required=True)
    c.add_argument("--bearer")
    c.add_argument("--client", default="203.0.113.10", help="the client address the edge vouches for")
    c.add_argument("--user", help="the user id the edge verified (default: none)")
    c.add_argument("--timeout", type=float, default=15)
    c.add_argument("method")
    c.add_argument("url")
    c.add_argument("body", nargs="?")
    args = parser.parse_args()
    if args.self_test:
        self_test()
    elif args.command == "call":
        call(args)
    else:
        parser.print_usage(sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
