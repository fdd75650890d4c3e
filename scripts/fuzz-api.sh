#!/usr/bin/env bash
# Fuzzes the running origin and edge from their OpenAPI documents with Schemathesis: every
# documented operation gets examples, boundary values (coverage), random valid and invalid
# inputs (fuzzing) and linked sequences (stateful: start -> get/state/exit), and every answer
# must be no 5xx, a documented status, a documented content type and match its schema.
#
#   scripts/fuzz-api.sh            both documents (docs/openapi.yaml, docs/openapi-edge.yaml)
#   scripts/fuzz-api.sh --setup    only install Schemathesis (scripts/setup.sh runs this)
#
# Starts what it needs and stops it by PID on exit: a Cassandra if none answers (reused
# otherwise), one origin (target/debug/origin, REGION=eu, a keyspace of its own) and the Worker
# under `wrangler dev` in front of it (scripts/fuzz/stack.mjs), all on 127.0.0.1 with a bounded
# lifetime. Installs Schemathesis into .cache/fuzz-venv on first use (PyPI).
# Prints `fuzz: N passed, M failed` (operations x checks, from the JUnit reports) and exits
# non-zero on any failure. Reports and logs land in artifacts/fuzz/ (run `st replay ID` for a
# failure there, with .cache/fuzz-venv/bin on PATH, while the stack is up).
#
# Environment:
#   FUZZ_MAX_EXAMPLES   examples per operation and phase (default 30: both documents in ~1-2 min)
#   FUZZ_SEED           Schemathesis seed (default 1, so runs are reproducible)
#   FUZZ_LIFETIME       seconds any server may live (default 600)
#   FUZZ_TIMEOUT        seconds one document's run may take before it counts as failed (default 110)
#   SCHEMATHESIS_VERSION the version installed into the venv (default 4.32.5)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export PATH="$HOME/.cargo/bin:$PATH"
export CASSANDRA_HOSTS="${CASSANDRA_HOSTS:-127.0.0.1:9042}"
export NO_COLOR=1

MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-30}"
SEED="${FUZZ_SEED:-1}"
LIFETIME="${FUZZ_LIFETIME:-600}"
RUN_TIMEOUT="${FUZZ_TIMEOUT:-110}"
ST_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
VENV="$ROOT/.cache/fuzz-venv"
OUT="$ROOT/artifacts/fuzz"

stack_pid=""
started_cassandra=""
cleanup() {
  if [[ -n "$stack_pid" ]] && kill -0 "$stack_pid" 2>/dev/null; then
    echo "fuzz: stopping the origin and the edge (pid $stack_pid)" >&2
    kill -TERM "$stack_pid" 2>/dev/null || true
    wait "$stack_pid" 2>/dev/null || true
  fi
  if [[ -n "$started_cassandra" ]]; then
    echo "fuzz: stopping the Cassandra this run started" >&2
    scripts/cassandra.sh stop || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Schemathesis -------------------------------------------------------------------------
if [[ "$("$VENV/bin/st" --version 2>/dev/null | awk '{print $NF}')" != "$ST_VERSION" ]]; then
  echo "fuzz: installing schemathesis $ST_VERSION into ${VENV#"$ROOT"/}" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi
[[ "${1:-}" == "--setup" ]] && exit 0
rm -rf "$OUT"
mkdir -p "$OUT"

# --- Cassandra ----------------------------------------------------------------------------
first_host="${CASSANDRA_HOSTS%%,*}"
if scripts/cassandra.sh answers; then
  echo "fuzz: using the Cassandra at $first_host (a keyspace of this run's own)" >&2
else
  CASSANDRA_FAST=1 scripts/cassandra.sh start
  started_cassandra=1
fi

# --- origin + edge --------------------------------------------------------------------------
cargo build --quiet -p origin
urls="$OUT/stack.json"
EDGE_TEST_LIFETIME="$LIFETIME" timeout --kill-after=10 "$((LIFETIME + 30))" \
  node scripts/fuzz/stack.mjs "$urls" >"$OUT/stack.log" 2>&1 &
stack_pid=$!
for _ in $(seq 1 300); do
  [[ -s "$urls" ]] && break
  if ! kill -0 "$stack_pid" 2>/dev/null; then
    cat "$OUT/stack.log" >&2
    echo "fuzz: the stack did not start" >&2
    exit 1
  fi
  sleep 1
done
[[ -s "$urls" ]] || { cat "$OUT/stack.log" >&2; echo "fuzz: the stack did not start within 300 s" >&2; exit 1; }
origin_url="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["origin"])' "$urls")"
edge_url="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["edge"])' "$urls")"
echo "fuzz: origin $origin_url, edge $edge_url" >&2

# --- fuzz -------------------------------------------------------------------------------------
# fuzz NAME SPEC URL: one Schemathesis run, bounded in time; its JUnit report is what counts.
st_failed=0
fuzz() {
  local name="$1" spec="$2" url="$3" start=$SECONDS rc=0
  echo "=== fuzz $name: $spec against $url"
  # From $OUT: Schemathesis keeps its replay cache (.schemathesis/) in the working directory.
  (cd "$OUT" && timeout --kill-after=10 "$RUN_TIMEOUT" "$VENV/bin/st" run "$ROOT/$spec" \
    --url "$url" \
    --phases examples,coverage,fuzzing,stateful \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --seed "$SEED" \
    --workers 1 \
    --request-timeout 10 \
    --generation-database none \
    --suppress-health-check all \
    --no-color \
    --report junit,ndjson \
    --report-junit-path "$OUT/$name.junit.xml" \
    --report-ndjson-path "$OUT/$name.ndjson" \
    --report-dir "$OUT") \
    2>&1 | tee "$OUT/$name.log" || rc=${PIPESTATUS[0]}
  echo "=== fuzz $name: exit $rc ($((SECONDS - start)) s)"
  ((rc == 0)) || st_failed=1
}
fuzz origin docs/openapi.yaml "$origin_url"
fuzz edge docs/openapi-edge.yaml "$edge_url"

"$VENV/bin/python" scripts/fuzz/summary.py "$OUT/origin.junit.xml" "$OUT/edge.junit.xml" || st_failed=1
exit "$st_failed"
