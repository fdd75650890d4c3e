#!/usr/bin/env bash
# The operations files checked with promtool (make test's `ops` stage; a few seconds):
#   - deploy/prometheus/seedsync.rules.yml parses (`promtool check rules`) and its unit tests
#     pass (`promtool test rules deploy/prometheus/tests/*.yml`: a firing and a silent case per
#     alert);
#   - every PromQL expression of the Grafana dashboards parses (scripts/check-dashboard.py),
#     and the check is shown to fail on a copy of a dashboard with one expression broken.
# A real origin's /metrics against promtool and the names these files use: it::ops, in the
# rust stage (it needs the origin built). promtool is built once by scripts/prometheus.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VERSION="${PROMETHEUS_VERSION:-v0.316.0}"
PROMTOOL="${PROMTOOL:-$ROOT/.cache/bin/promtool-$VERSION}"
[[ -x $PROMTOOL ]] || bash scripts/prometheus.sh build-promtool

"$PROMTOOL" check rules deploy/prometheus/seedsync.rules.yml
"$PROMTOOL" test rules deploy/prometheus/tests/*.yml
python3 scripts/check-dashboard.py "$PROMTOOL"

# The dashboard check must be able to fail: one expression broken in a copy.
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 - "$tmp/broken.json" <<'PY'
import json, sys
d = json.load(open("deploy/grafana/dashboards/seedsync-origins.json"))
panel = next(p for p in d["panels"] if p.get("targets"))
panel["targets"][0]["expr"] = "sum by (region (rate(seedsync_http_requests_total[5m]))"
json.dump(d, open(sys.argv[1], "w"))
PY
if python3 scripts/check-dashboard.py "$PROMTOOL" "$tmp/broken.json" >"$tmp/out" 2>&1; then
  echo "ops-check: the dashboard check accepted a broken expression" >&2
  exit 1
fi
echo "ops-check: a broken dashboard expression is refused, as it should be"
