#!/usr/bin/env python3
"""Runs `origin check-config` on the environment of every container the Helm chart renders.

Usage: helm-check-config.py ORIGIN_BINARY MANIFEST.yaml...  (PyYAML: scripts/helm.sh runs it
with its kubernetes-validate venv). Each Deployment's and Job's container env is taken as
rendered; a `secretKeyRef` becomes a stand-in secret of 48 bytes (what a real Secret would hold),
checked twice: with every optional key present and with only the required ones. The chart's own
values then go through the origin's real parser, so a value the origin would refuse at start
(a replication it cannot parse, an https notice URL, a secret without its partner) fails here.
"""

import subprocess
import sys

import yaml

STAND_IN = "helm-check-config-stand-in-secret-0123456789abcd"


def containers(doc):
    spec = doc.get("spec", {})
    if doc.get("kind") == "Deployment":
        pod = spec["template"]["spec"]
    elif doc.get("kind") == "Job":
        pod = spec["template"]["spec"]
    else:
        return []
    return pod.get("containers", [])


def environment(container, optional_keys):
    env = {}
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
            continue
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        if ref is None:
            raise SystemExit(f"helm-check-config: {item['name']}: only value and secretKeyRef are known")
        if ref.get("optional") and not optional_keys:
            continue
        env[item["name"]] = STAND_IN
    return env


def main():
    binary, manifests = sys.argv[1], sys.argv[2:]
    failures = 0
    for path in manifests:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            for container in containers(doc):
                where = f"{path.rsplit('/', 1)[-1]}: {doc['kind']}/{doc['metadata']['name']}/{container['name']}"
                for optional in (True, False):
                    env = environment(container, optional)
                    run = subprocess.run([binary, "check-config"], env=env, capture_output=True, text=True)
                    label = "all secret keys" if optional else "required secret keys"
                    if run.returncode != 0:
                        failures += 1
                        print(f"helm-check-config: FAIL {where} ({label}): {run.stderr.strip()}", file=sys.stderr)
                    elif optional:
                        print(f"helm-check-config: {where}: {run.stdout.strip()}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
