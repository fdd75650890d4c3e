#!/usr/bin/env python3
"""Checks the Grafana dashboards in deploy/grafana/dashboards with promtool.

Every panel target's PromQL (rows' nested panels too) has the dashboard's variables replaced
by values of the right shape ($region by a regex, $__rate_interval and friends by a duration;
an unknown variable is an error), then goes into a temporary rules file, one recording rule
per expression, which `promtool check rules` parses: a broken expression fails the check.
Also checked: unique panel ids, a datasource and gridPos on every panel, a refId per target.

Usage: check-dashboard.py PROMTOOL [DASHBOARD.json ...]   (default: every dashboard)
       check-dashboard.py --names [DASHBOARD.json ...]    prints the metric names used
"""
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DASHBOARDS = os.path.join(ROOT, "deploy", "grafana", "dashboards")
# Grafana's built-in interval variables, and this repository's own template variables.
SUBSTITUTES = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
    "region": ".*",
}
VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
NAME = re.compile(r"(?<![\w:])(seedsync[_:][a-zA-Z0-9_:]*|up)(?=[\s{\[(),]|$)")


def panels_of(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def expressions(path):
    """(panel title, refId, expression with variables substituted), and problems found."""
    with open(path, encoding="utf-8") as f:
        dashboard = json.load(f)
    found, problems, ids = [], [], set()
    declared = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
    for panel in panels_of(dashboard):
        title = panel.get("title", "?")
        if panel.get("id") in ids:
            problems.append(f"panel {title!r}: duplicate id {panel.get('id')}")
        ids.add(panel.get("id"))
        if "gridPos" not in panel:
            problems.append(f"panel {title!r}: no gridPos")
        if panel.get("type") == "row":
            continue
        if not panel.get("datasource"):
            problems.append(f"panel {title!r}: no datasource")
        targets = panel.get("targets", [])
        if not targets:
            problems.append(f"panel {title!r}: no targets")
        for target in targets:
            expr, ref = target.get("expr", ""), target.get("refId")
            if not ref or not expr.strip():
                problems.append(f"panel {title!r}: a target without refId or expr")
                continue

            def substitute(m):
                name = m.group(1) or m.group(2)
                if name not in SUBSTITUTES or (not name.startswith("__") and name not in declared):
                    problems.append(f"panel {title!r} {ref}: unknown variable ${name}")
                    return "unknown"
                return SUBSTITUTES[name]

            found.append((title, ref, VARIABLE.sub(substitute, expr)))
    return found, problems


def main(argv):
    names_only = argv[:1] == ["--names"]
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    promtool = None if names_only else argv[0]
    paths = argv[1:] or sorted(
        os.path.join(DASHBOARDS, f) for f in os.listdir(DASHBOARDS) if f.endswith(".json")
    )
    all_exprs, problems = [], []
    for path in paths:
        try:
            exprs, found_problems = expressions(path)
        except (OSError, ValueError) as e:
            problems.append(f"{path}: {e}")
            continue
        all_exprs += [(path, *e) for e in exprs]
        problems += [f"{os.path.basename(path)}: {p}" for p in found_problems]
    if names_only:
        names = set()
        for _, _, _, expr in all_exprs:
            names.update(NAME.findall(expr))
        print("\n".join(sorted(names)))
        return 0
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        rules = os.path.join(tmp, "dashboard-exprs.yml")
        with open(rules, "w", encoding="utf-8") as f:
            f.write("groups:\n  - name: dashboard-expressions\n    rules:\n")
            for i, (path, title, ref, expr) in enumerate(all_exprs):
                f.write(f"      # {os.path.basename(path)}: {title} {ref}\n")
                f.write(f"      - record: dashboard:expr_{i}\n        expr: {json.dumps(expr)}\n")
        result = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True)
        if result.returncode != 0:
            print(result.stdout + result.stderr, file=sys.stderr)
            print(f"check-dashboard: promtool refused an expression (see above; {rules})", file=sys.stderr)
            return 1
    print(f"check-dashboard: {len(all_exprs)} expressions in {len(paths)} dashboard(s) checked by promtool")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
