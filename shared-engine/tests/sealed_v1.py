"""An independent transcription of sealed-v1 (the spec in shared-engine/src/sealed.rs) with
Python's hashlib and big integers: reads vectors/sealed-v1.json on stdin and prints the
number of rows checked, or exits 1 naming the first row it disagrees with."""
import hashlib
import json
import sys

LIFETIME_MS = 24 * 60 * 60 * 1000
MIN_ROUND_MS = 1000


def h(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def min_round(tick_ms: int) -> int:
    return ceil_div(MIN_ROUND_MS, tick_ms)


def rounds(tick_ms: int) -> int:
    return ceil_div(ceil_div(LIFETIME_MS, tick_ms), min_round(tick_ms))


def length(tick_ms: int, break_every: int, key: bytes) -> int:
    m = min_round(tick_ms)
    n = break_every - m + 1
    powers = [(2**64 * (n - 1)) // n]
    for _ in range(39):
        powers.append(powers[-1] ** 2 >> 64)
    u = int.from_bytes(key[:8], "big")
    acc, g = 2**64, 0
    for i in reversed(range(40)):
        c = acc * powers[i] >> 64
        if c > u:
            acc, g = c, g + 2**i
    return m + g


def tick(tick_ms, break_every, keys, step):
    """(value, round, broken, settled), from the break steps B_r = L_1 + ... + L_r - 1."""
    rnd, last_break, start = 0, None, 0
    for k in keys:
        at = start + length(tick_ms, break_every, k) - 1
        if at > step:
            return (step - last_break if last_break is not None else step + 1), rnd, last_break == step, True
        rnd, last_break, start = rnd + 1, at, at + 1
    value = step - last_break if last_break is not None else step + 1
    # Past every revealed break: the next round's break is at start + L - 1 >= start + m - 1.
    settled = last_break == step or step - start + 1 < min_round(tick_ms)
    return value, rnd, last_break == step, settled


def main():
    v = json.load(sys.stdin)
    checked = 0
    chains = {}
    for c in v["chains"]:
        root = bytes.fromhex(c["root"])
        n = rounds(c["tickMs"])
        assert n == c["rounds"], c
        keys = [root]
        for _ in range(n):
            keys.append(h(keys[-1]))
        # keys[i] = H^i(root) = k_(n - i); the commitment is k_0 = H^n(root).
        assert keys[n].hex() == c["commitment"], c["chain"]
        first = [keys[n - r].hex() for r in range(1, len(c["keys"]) + 1)]
        assert first == c["keys"], c["chain"]
        chains[c["chain"]] = [bytes.fromhex(k) for k in c["keys"]]
        checked += 1
    for row in v["lengths"]:
        got = length(row["tickMs"], row["breakEvery"], bytes.fromhex(row["key"]))
        assert got == row["length"], (row, got)
        checked += 1
    for row in v["ticks"]:
        keys = chains[row["chain"]][: row["revealed"]]
        got = tick(row["tickMs"], row["breakEvery"], keys, row["step"])
        want = (row["value"], row["round"], row["broken"], row["settled"])
        assert got == want, (row, got)
        checked += 1
    print(checked)


main()
