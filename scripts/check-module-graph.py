#!/usr/bin/env python3
"""Prints the graph between the origin's top-level modules and fails on any cycle.

A module is a file `src/foo.rs` or a directory `src/foo/` (its `mod.rs` and every file under
it); `main.rs` and `lib.rs` are the roots and not part of the graph. An arrow `a -> b` means a
file of `a` names `crate::b` (in a `use` or a path). Usage:

    scripts/check-module-graph.py [origin/src]

Exit status 1 (with each cycle listed) when some module reaches itself again.
"""

import os
import re
import sys

ROOTS = {"main", "lib"}
# `crate::foo` in a path, and `use crate::{foo, bar::baz}` groups.
PATH = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
GROUP = re.compile(r"\bcrate::\{([^}]*)\}", re.S)


def strip_comments(text):
    """Drops `//` comments (docs name modules in prose and links, which are not imports)."""
    return "\n".join(re.sub(r"//.*", "", line) for line in text.splitlines())


def module_of(src, path):
    rel = os.path.relpath(path, src)
    first = rel.split(os.sep)[0]
    return first[:-3] if first.endswith(".rs") else first


def graph(src):
    edges = {}
    for directory, _, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(directory, name)
            module = module_of(src, path)
            if module in ROOTS or module == "bin":
                continue
            with open(path, encoding="utf-8") as file:
                text = strip_comments(file.read())
            targets = set(PATH.findall(text))
            for group in GROUP.findall(text):
                for item in group.split(","):
                    head = item.strip().split("::")[0].strip()
                    if re.fullmatch(r"[a-z_][a-z0-9_]*", head):
                        targets.add(head)
            edges.setdefault(module, set())
            for target in targets:
                if target != module and target not in ROOTS and target != "self":
                    edges[module].add(target)
    return edges


def cycles(edges):
    """Every strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "origin", "src")
    edges = graph(src)
    for module in sorted(edges):
        for target in sorted(edges[module]):
            print(f"{module} -> {target}")
    bad = cycles(edges)
    if not bad:
        print(f"ok: {len(edges)} modules, {sum(map(len, edges.values()))} arrows, no cycle")
        return 0
    for component in bad:
        back = [f"{a} -> {b}" for a in component for b in sorted(edges[a]) if b in component]
        print(f"cycle among {', '.join(component)}: {'; '.join(back)}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
