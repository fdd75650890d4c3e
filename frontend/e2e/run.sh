#!/usr/bin/env bash
# End-to-end test of the page in a real headless Chromium against the full local stack.
#
#   npm run e2e                      brings the stack up on its own ports, runs the test, tears it down
#   E2E_BASE_URL=http://127.0.0.1:8787 npm run e2e    runs against a stack that is already up
#                                    (tournament.e2e then also needs E2E_ORIGIN_URL, one of its
#                                    origins, and E2E_ADMIN_TOKEN_FILE, its secret-admin_token)
#   npm run e2e -- sealed            runs only the e2e files whose name contains "sealed" (any
#                                    arguments go to vitest as file filters)
#
# The stack (Cassandra, three origins, the edge Worker serving frontend/dist) comes from
# scripts/stack.sh, with this test's own ports, run dir and keyspace so it never touches a
# developer's `make dev`. It is always taken down again, pass or fail. Screenshots, the test's
# figures (report.json) and the stack's logs go to artifacts/e2e/.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
frontend=$(dirname "$here")
root=$(dirname "$frontend")
artifacts="${E2E_ARTIFACTS:-$root/artifacts/e2e}"
mkdir -p "$artifacts"
export E2E_ARTIFACTS="$artifacts"
cd "$frontend"

summary() { # passed failed note
  echo "e2e: $1 passed, $2 failed${3:+ ($3)}"
}

if [ -z "${E2E_BASE_URL:-}" ]; then
  stack="$root/scripts/stack.sh"
  if [ ! -f "$stack" ]; then
    echo "e2e: scripts/stack.sh is missing: cannot bring the stack up" >&2
    summary 0 1 "no stack"
    exit 1
  fi
  export EDGE_PORT="${E2E_EDGE_PORT:-18787}"
  export ORIGIN_PORT_BASE="${E2E_ORIGIN_PORT_BASE:-18081}"
  export STACK_RUN_DIR="${E2E_STACK_RUN_DIR:-$root/.run/e2e}"
  export CASSANDRA_KEYSPACE="${E2E_KEYSPACE:-e2e_$(date +%s)_$RANDOM}"
  # The page's keyboard flow types its own user id: the edge believes it (USER_AUTH=off), as
  # for /v1-era clients. Guest identities have their own tests (edge-worker/tests/edge-users).
  export USER_AUTH="${E2E_USER_AUTH:-off}"
  # The page's tests need no trace collector and no Prometheus (their own tests are the traces
  # stage and it::ops): not building or binding them keeps this stage short and off 9090/16686.
  export STACK_TRACING="${E2E_STACK_TRACING:-0}" STACK_PROMETHEUS="${E2E_STACK_PROMETHEUS:-0}"
  down() {
    echo "e2e: stopping the stack" >&2
    if ! timeout 240 bash "$stack" down >"$artifacts/stack-down.log" 2>&1; then
      echo "e2e: warning: 'stack.sh down' failed; see $artifacts/stack-down.log" >&2
    fi
  }
  trap down EXIT
  trap 'exit 130' INT TERM
  echo "e2e: starting the stack (edge :$EDGE_PORT, origins :$ORIGIN_PORT_BASE+, keyspace $CASSANDRA_KEYSPACE); log: $artifacts/stack-up.log" >&2
  started=$(date +%s)
  if ! timeout "${E2E_STACK_UP_TIMEOUT:-1200}" bash "$stack" up >"$artifacts/stack-up.log" 2>&1; then
    echo "e2e: 'stack.sh up' failed or timed out; last lines of its log:" >&2
    tail -n 40 "$artifacts/stack-up.log" >&2
    summary 0 1 "stack did not come up"
    exit 1
  fi
  echo "e2e: stack up in $(( $(date +%s) - started )) s" >&2
  export E2E_BASE_URL="http://127.0.0.1:$EDGE_PORT"
  # tournament.e2e creates its tournament at an origin as the operator: the stack's ADMIN_TOKEN
  # is read from its mode-600 file by the test, never passed on a command line.
  export E2E_ORIGIN_URL="http://127.0.0.1:$ORIGIN_PORT_BASE"
  export E2E_ADMIN_TOKEN_FILE="$STACK_RUN_DIR/secret-admin_token"
fi

# The test itself uses the engine wasm the page uses (src/engine/generated), prepared here if needed.
node scripts/prepare-engine.mjs >&2 || { summary 0 1 "engine wasm unavailable"; exit 1; }

rm -f "$artifacts/results.json"
started=$(date +%s)
timeout "${E2E_TIMEOUT:-420}" npx vitest run --config e2e/vitest.config.ts \
  --reporter=default --reporter=json --outputFile.json="$artifacts/results.json" "$@"
rc=$?
echo "e2e: test ran in $(( $(date +%s) - started )) s against $E2E_BASE_URL (exit $rc); artifacts in $artifacts" >&2

node e2e/summary.mjs "$artifacts" "$rc"

# Whole run over: no secret of the stack this run started may be on a command line, in a log
# or in an origin's /metrics.
if [ -n "${STACK_RUN_DIR:-}" ]; then
  base="${E2E_ORIGIN_PORT_BASE:-18081}"
  if ! bash "$root/scripts/check-secret-leaks.sh" "$STACK_RUN_DIR" \
    "http://127.0.0.1:$base" "http://127.0.0.1:$((base + 1))" "http://127.0.0.1:$((base + 2))"; then
    summary 0 1 "a secret leaked"
    rc=1
  fi
fi
exit $(( rc != 0 ))
