#!/usr/bin/env python3
"""Tiny CQL native-protocol (v4) probe used by scripts/cassandra.sh. Standard library only.

  cqlprobe.py ping HOST [PORT]   OPTIONS -> SUPPORTED, then STARTUP -> READY. Exit 0 when both work.
  cqlprobe.py info HOST [PORT]   ping, then read system.local and system.peers; prints one line:
                                 version=5.0.9 dc=eu peers=2 agreed=2
                                 (agreed = peers whose schema_version equals the local one).
  cqlprobe.py tokens N           N balanced Murmur3 tokens (one per line) for num_tokens: 1.

Exit codes: 0 ok, 1 the server did not answer as a CQL server should, 2 usage.
"""

import socket
import struct
import sys
import uuid

VERSION = 0x04  # request frames of protocol v4; responses carry 0x84
OP_ERROR, OP_STARTUP, OP_READY, OP_AUTHENTICATE = 0x00, 0x01, 0x02, 0x03
OP_OPTIONS, OP_SUPPORTED, OP_QUERY, OP_RESULT = 0x05, 0x06, 0x07, 0x08
CONSISTENCY_ONE = 0x0001
RESULT_ROWS = 0x0002


class ProbeError(Exception):
    pass


def _string(s):
    b = s.encode("utf-8")
    return struct.pack(">H", len(b)) + b


def _long_string(s):
    b = s.encode("utf-8")
    return struct.pack(">i", len(b)) + b


def _string_map(m):
    out = struct.pack(">H", len(m))
    for k, v in m.items():
        out += _string(k) + _string(v)
    return out


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if n < 0 or self.pos + n > len(self.data):
            raise ProbeError("truncated response body")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self):
        return self.take(1)[0]

    def short(self):
        return struct.unpack(">H", self.take(2))[0]

    def int(self):
        return struct.unpack(">i", self.take(4))[0]

    def string(self):
        return self.take(self.short()).decode("utf-8", "replace")

    def bytes(self):
        n = self.int()
        return None if n < 0 else self.take(n)

    def string_list(self):
        return [self.string() for _ in range(self.short())]

    def string_multimap(self):
        return {self.string(): self.string_list() for _ in range(self.short())}

    def option(self):
        """Reads a column type; returns its id (nested types are skipped)."""
        type_id = self.short()
        if type_id == 0x0000:  # custom
            self.string()
        elif type_id in (0x0020, 0x0022):  # list, set
            self.option()
        elif type_id == 0x0021:  # map
            self.option()
            self.option()
        elif type_id == 0x0030:  # UDT
            self.string()
            self.string()
            for _ in range(self.short()):
                self.string()
                self.option()
        elif type_id == 0x0031:  # tuple
            for _ in range(self.short()):
                self.option()
        return type_id


class Connection:
    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.stream = 0

    def close(self):
        self.sock.close()

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ProbeError("connection closed by the server")
            buf += chunk
        return buf

    def request(self, opcode, body=b""):
        self.stream += 1
        header = struct.pack(">BBhBi", VERSION, 0, self.stream, opcode, len(body))
        self.sock.sendall(header + body)
        version, _flags, stream, op, length = struct.unpack(">BBhBi", self._recv_exact(9))
        if version & 0x7F != VERSION or not version & 0x80:
            raise ProbeError("unexpected protocol version byte 0x%02x" % version)
        if stream != self.stream:
            raise ProbeError("response for stream %d, expected %d" % (stream, self.stream))
        data = self._recv_exact(length) if length else b""
        if op == OP_ERROR:
            r = Reader(data)
            code = r.int()
            raise ProbeError("server error 0x%04x: %s" % (code, r.string()))
        return op, Reader(data)

    def handshake(self):
        op, r = self.request(OP_OPTIONS)
        if op != OP_SUPPORTED:
            raise ProbeError("OPTIONS answered with opcode 0x%02x, not SUPPORTED" % op)
        supported = r.string_multimap()
        cql_versions = supported.get("CQL_VERSION") or ["3.0.0"]
        op, _ = self.request(OP_STARTUP, _string_map({"CQL_VERSION": cql_versions[0]}))
        if op not in (OP_READY, OP_AUTHENTICATE):
            raise ProbeError("STARTUP answered with opcode 0x%02x, not READY" % op)
        return op == OP_READY

    def query(self, cql):
        body = _long_string(cql) + struct.pack(">HB", CONSISTENCY_ONE, 0)
        op, r = self.request(OP_QUERY, body)
        if op != OP_RESULT:
            raise ProbeError("QUERY answered with opcode 0x%02x, not RESULT" % op)
        if r.int() != RESULT_ROWS:
            raise ProbeError("QUERY did not return rows")
        flags = r.int()
        ncols = r.int()
        if flags & 0x0002:  # has_more_pages
            r.bytes()
        types = []
        if not flags & 0x0004:  # metadata present
            global_spec = flags & 0x0001
            if global_spec:
                r.string()
                r.string()
            for _ in range(ncols):
                if not global_spec:
                    r.string()
                    r.string()
                r.string()
                types.append(r.option())
        rows = []
        for _ in range(r.int()):
            rows.append([_decode(types[i] if i < len(types) else None, r.bytes()) for i in range(ncols)])
        return rows


def _decode(type_id, raw):
    if raw is None:
        return None
    if type_id in (0x000D, 0x0001):  # varchar/text, ascii
        return raw.decode("utf-8", "replace")
    if type_id in (0x000C, 0x000F):  # uuid, timeuuid
        return str(uuid.UUID(bytes=raw))
    if type_id == 0x0010:  # inet
        return socket.inet_ntop(socket.AF_INET if len(raw) == 4 else socket.AF_INET6, raw)
    return raw.hex()


def balanced_tokens(n):
    lo, span = -(2 ** 63), 2 ** 64
    return [lo + (i * span) // n for i in range(n)]


def main(argv):
    if len(argv) >= 2 and argv[0] == "tokens":
        n = int(argv[1])
        if n < 1:
            return 2
        print("\n".join(str(t) for t in balanced_tokens(n)))
        return 0
    if len(argv) not in (2, 3) or argv[0] not in ("ping", "info"):
        sys.stderr.write(__doc__)
        return 2
    cmd, host = argv[0], argv[1]
    port = int(argv[2]) if len(argv) == 3 else 9042
    try:
        conn = Connection(host, port, timeout=5.0)
    except OSError as e:
        sys.stderr.write("cqlprobe: %s:%d: %s\n" % (host, port, e))
        return 1
    try:
        ready = conn.handshake()
        if cmd == "ping":
            return 0
        if not ready:
            print("auth=required")
            return 0
        local = conn.query("SELECT release_version, data_center, schema_version FROM system.local")
        if not local:
            raise ProbeError("system.local is empty")
        version, dc, schema = local[0]
        peers = conn.query("SELECT peer, data_center, schema_version FROM system.peers")
        agreed = sum(1 for p in peers if p[2] is not None and p[2] == schema)
        print("version=%s dc=%s peers=%d agreed=%d" % (version, dc, len(peers), agreed))
        return 0
    except (ProbeError, OSError, struct.error) as e:
        sys.stderr.write("cqlprobe: %s:%d: %s\n" % (host, port, e))
        return 1
    finally:
        conn.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
