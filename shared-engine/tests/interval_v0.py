#!/usr/bin/env python3
"""An independent transcription of `interval-v0`, for cross-checking the Rust engine.

Written from the algorithm's definition only (plain python3, standard library), and simulated
step by step, with none of the engine's round-by-round shortcuts:

- xorshift64(x): x ^= x << 13; x ^= x >> 7; x ^= x << 17 (on 64-bit unsigned integers).
- Rounds are numbered r = 0, 1, 2, ... (r is the number of breaks so far). Round r lasts
  interval(r) = 100 + xorshift64(seed ^ r) % 201 steps, where the seed is an int64 read as its
  64-bit two's complement.
- The value is 1 at step 0 and grows by one each step; after interval(r) non-break steps of
  round r, the next step breaks: value 0, the round becomes r + 1, broken is true.

Usage:
  python3 interval_v0.py SEED STEP       prints {"step", "value", "round", "broken"}
  python3 interval_v0.py < request.json  answers a batch request (see `answer`)
"""

import json
import sys

MASK64 = (1 << 64) - 1


def xorshift64(x):
    x ^= (x << 13) & MASK64
    x ^= x >> 7
    x ^= (x << 17) & MASK64
    return x


def as_uint64(seed):
    """An int64 (or any integer) as its 64-bit two's complement bits."""
    return seed & MASK64


def interval(seed, r):
    return 100 + xorshift64(as_uint64(as_uint64(seed) ^ r)) % 201


def simulate(seed, steps, break_count):
    """Runs the game step by step through every step in `steps` and until `break_count` breaks.

    Returns (ticks, breaks): ticks[step] = (value, round, broken) for each step in `steps`, and
    the steps of the first `break_count` breaks, in order.
    """
    wanted = set(steps)
    last_step = max(wanted, default=-1)
    ticks = {}
    breaks = []
    r = 0
    run = 0  # non-break steps so far in round r
    length = interval(seed, r)
    step = 0
    while step <= last_step or len(breaks) < break_count:
        if run == length:
            r += 1
            run = 0
            length = interval(seed, r)
            tick = (0, r, True)
            breaks.append(step)
        else:
            run += 1
            tick = (run, r, False)
        if step in wanted:
            ticks[step] = tick
        step += 1
    return ticks, breaks[:break_count]


def answer(request):
    """request: {"ticks": [[seed, step], ...], "intervals": [[seed, round], ...],
    "breaks": [[seed, count], ...]} (every key optional).

    Returns {"ticks": [[value, round, broken], ...], "intervals": [interval, ...],
    "breaks": [[step of break 1, ..., step of break count], ...]}, in request order.
    """
    tick_queries = request.get("ticks", [])
    break_queries = request.get("breaks", [])
    steps = {}
    break_count = {}
    for seed, step in tick_queries:
        steps.setdefault(seed, set()).add(step)
    for seed, count in break_queries:
        break_count[seed] = max(break_count.get(seed, 0), count)
    games = {}
    for seed in set(steps) | set(break_count):
        games[seed] = simulate(seed, steps.get(seed, ()), break_count.get(seed, 0))
    return {
        "ticks": [list(games[seed][0][step]) for seed, step in tick_queries],
        "intervals": [interval(seed, r) for seed, r in request.get("intervals", [])],
        "breaks": [games[seed][1][:count] for seed, count in break_queries],
    }


def main(argv):
    if len(argv) == 3:
        seed, step = int(argv[1]), int(argv[2])
        value, r, broken = simulate(seed, [step], 0)[0][step]
        print(json.dumps({"step": step, "value": value, "round": r, "broken": broken}))
        return 0
    if len(argv) != 1:
        sys.stderr.write(__doc__)
        return 2
    json.dump(answer(json.load(sys.stdin)), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
