#!/usr/bin/env bash
# `make deploy-check`: what `wrangler deploy --env production` would upload, checked offline before
# anyone runs it. Builds the page (frontend/dist) and the Worker fresh, bundles with
# `wrangler deploy --dry-run --env production --outdir <tmp>`, and fails when
#   - the page build is missing or empty (frontend/dist/index.html),
#   - the production env lacks the LiveRoom Durable Object binding or its migration,
#   - a required secret is not declared in [env.production.secrets] required,
#   - production could be overwritten by a plain deploy (same name as the top level), is on
#     workers.dev, or has no routes.
# Usage: scripts/deploy-check.sh            the check (builds first)
#        scripts/deploy-check.sh --self-test  also shows that it fails without the page build and
#                                            without the migration (make test's deploy stage)
# Env: FRONTEND_DIST (checked page dir, default frontend/dist), DEPLOY_CHECK_NO_BUILD=1 (skip builds),
#      WRANGLER_CONFIG (default wrangler.toml; only the config checks read another file).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$HOME/.cargo/bin:$PATH"
# The secrets the production Worker cannot work without (docs/deploy.md lists all of them).
REQUIRED_SECRETS="OWNER_TOKEN_SECRET EDGE_NOTIFY_SECRET EDGE_ORIGIN_SECRET REGISTRY_SECRET USER_TOKEN_SECRET"

fail() { echo "deploy-check: FAIL: $*" >&2; exit 1; }

check_page() {
  local dist="${FRONTEND_DIST:-frontend/dist}"
  [[ -s "$dist/index.html" ]] || fail "the page build is missing: $dist/index.html absent or empty (npm --prefix frontend run build)"
  grep -qi '<script' "$dist/index.html" || fail "$dist/index.html loads no script (not a page build)"
}

check_config() { # config file
  REQUIRED_SECRETS="$REQUIRED_SECRETS" python3 - "$1" <<'PY'
import os, sys, tomllib
path = sys.argv[1]
with open(path, "rb") as f:
    top = tomllib.load(f)
prod = top.get("env", {}).get("production")
errors = []
if prod is None:
    errors.append("no [env.production]")
    prod = {}
if not prod.get("name") or prod.get("name") == top.get("name"):
    errors.append("production must have its own Worker name, distinct from the top level's")
if prod.get("workers_dev", True) is not False:
    errors.append("production must set workers_dev = false")
if not (prod.get("routes") or prod.get("route")):
    errors.append("production has no routes / custom domain")
if not prod.get("observability", {}).get("enabled"):
    errors.append("production has no [observability] enabled = true")
bindings = prod.get("durable_objects", {}).get("bindings", [])
classes = {b.get("class_name") for b in bindings}
if "LiveRoom" not in classes:
    errors.append("production lacks the LIVE_ROOMS Durable Object binding (class LiveRoom)")
migrated = set()
for m in prod.get("migrations", []):
    migrated.update(m.get("new_sqlite_classes", []) + m.get("new_classes", []))
    for r in m.get("renamed_classes", []):
        migrated.add(r.get("to"))
for c in classes:
    if c not in migrated:
        errors.append(f"production has no Durable Object migration creating {c}")
declared = set(prod.get("secrets", {}).get("required", []))
for s in os.environ["REQUIRED_SECRETS"].split():
    if s not in declared:
        errors.append(f"secret {s} is not declared in [env.production.secrets] required")
for e in errors:
    print(f"deploy-check: FAIL: {path}: {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY
}

check() {
  local start=$SECONDS config="${WRANGLER_CONFIG:-wrangler.toml}"
  if [[ -z "${DEPLOY_CHECK_NO_BUILD:-}" && -z "${FRONTEND_DIST:-}" ]]; then
    npm --prefix frontend run --silent build >/dev/null || fail "the frontend build failed"
  fi
  check_page
  check_config "$config" || exit 1
  [[ -n "${DEPLOY_CHECK_NO_BUILD:-}" ]] || bash scripts/build-worker.sh >/dev/null
  local out log
  out="$(mktemp -d)"; log="$out.log"
  if ! bash edge-worker/scripts/wrangler.sh deploy --dry-run --env production --outdir "$out" >"$log" 2>&1; then
    cat "$log" >&2; rm -rf "$out" "$log"; fail "wrangler deploy --dry-run --env production failed"
  fi
  # What wrangler itself reports it would bind: the Durable Object and the page assets.
  grep -q 'LIVE_ROOMS' "$log" || { cat "$log" >&2; fail "the dry run shows no LIVE_ROOMS binding"; }
  [[ -s "$out/index.js" ]] || fail "the dry run wrote no index.js"
  grep -E 'Total Upload' "$log" | sed 's/^/deploy-check: /' || true
  rm -rf "$out" "$log"
  echo "deploy-check: ok ($((SECONDS - start)) s)"
}

self_test() {
  local empty tmp
  empty="$(mktemp -d)"
  if FRONTEND_DIST="$empty" DEPLOY_CHECK_NO_BUILD=1 "$0" 2>/dev/null; then
    rm -rf "$empty"; fail "self-test: passed with an empty page build"
  fi
  echo "deploy-check: self-test: an empty page build fails (ok)"
  rm -rf "$empty"
  tmp="$(mktemp --suffix=.toml)"
  # wrangler.toml without the production migration must fail the config check.
  python3 - "$tmp" <<'PY'
import re, sys
s = open("wrangler.toml").read()
s = re.sub(r'\[\[env\.production\.migrations\]\][^\[]*', '', s)
open(sys.argv[1], "w").write(s)
PY
  if check_config "$tmp" 2>/dev/null; then rm -f "$tmp"; fail "self-test: passed without the production migration"; fi
  echo "deploy-check: self-test: a missing production migration fails (ok)"
  rm -f "$tmp"
}

case "${1:-}" in
  --self-test) self_test; check ;;
  "") check ;;
  *) echo "usage: $0 [--self-test]" >&2; exit 2 ;;
esac
