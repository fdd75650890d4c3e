#!/usr/bin/env bash
# Fails when a secret of a running local stack shows up where anyone on the machine, or anyone
# who reads logs or scrapes metrics, could see it: the command line of any process (`ps`),
# any log in the stack's run dir, or an origin's /metrics.
#
#   scripts/check-secret-leaks.sh RUN_DIR URL...   check the stack whose secrets are the
#                                                  RUN_DIR/secret-* files (scripts/stack.sh);
#                                                  each URL's /metrics is scraped
#   scripts/check-secret-leaks.sh --self-test      show that a planted leak is found
#
# A finding names the secret's file and where it was seen, never the value.
set -uo pipefail

check() {
  local run_dir="$1"
  shift
  local secrets=("$run_dir"/secret-*)
  if [[ ! -e "${secrets[0]}" ]]; then
    echo "secret-leaks: no secret files in $run_dir" >&2
    return 1
  fi
  local scratch found=0 secret value name
  scratch="$(mktemp -d)"
  ps -eo args= > "$scratch/ps.txt"
  local url
  for url in "$@"; do
    curl -fsS --max-time 5 "$url/metrics" >> "$scratch/metrics.txt" 2>/dev/null || {
      echo "secret-leaks: cannot scrape $url/metrics" >&2
      found=1
    }
  done
  touch "$scratch/metrics.txt"
  for secret in "${secrets[@]}"; do
    name="$(basename "$secret")"
    value="$(cat "$secret")"
    # A short value could match by chance; the stack's secrets are 32+ bytes.
    [[ ${#value} -ge 16 ]] || { echo "secret-leaks: $name is shorter than 16 bytes" >&2; found=1; continue; }
    if grep -qF -- "$value" "$scratch/ps.txt"; then
      echo "secret-leaks: $name is on a process command line (ps)" >&2
      found=1
    fi
    if grep -qF -- "$value" "$scratch/metrics.txt"; then
      echo "secret-leaks: $name is in /metrics" >&2
      found=1
    fi
    local hits
    hits="$(grep -rlF --include='*.log' -- "$value" "$run_dir" 2>/dev/null)"
    if [[ -n "$hits" ]]; then
      echo "secret-leaks: $name is in $(echo "$hits" | tr '\n' ' ')" >&2
      found=1
    fi
  done
  rm -rf "$scratch"
  if (( found == 0 )); then
    echo "secret-leaks: none of ${#secrets[@]} secrets in ps, $# /metrics or the logs of $run_dir"
  fi
  return "$found"
}

self_test() {
  local dir pid rc
  dir="$(mktemp -d)"
  printf 'leak-check-self-test-%s' "$RANDOM$RANDOM$RANDOM" > "$dir/secret-planted"
  : > "$dir/clean.log"
  check "$dir" > /dev/null 2>&1 || { echo "secret-leaks self-test: a clean dir was flagged" >&2; rm -rf "$dir"; return 1; }
  # Planted in a log, then on a command line: both must be found.
  cat "$dir/secret-planted" > "$dir/leaky.log"
  check "$dir" > /dev/null 2>&1 && { echo "secret-leaks self-test: a leak in a log was missed" >&2; rm -rf "$dir"; return 1; }
  rm "$dir/leaky.log"
  (exec -a "planted $(cat "$dir/secret-planted")" sleep 30) > /dev/null 2>&1 &
  pid=$!
  sleep 0.3
  check "$dir" > /dev/null 2>&1
  rc=$?
  kill "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  rm -rf "$dir"
  (( rc != 0 )) || { echo "secret-leaks self-test: a secret on a command line was missed" >&2; return 1; }
  echo "secret-leaks self-test: a clean dir passes; a leak in a log and on a command line are found"
}

if [[ "${1:-}" == "--self-test" ]]; then
  self_test
else
  [[ $# -ge 1 ]] || { echo "usage: $0 RUN_DIR URL... | --self-test" >&2; exit 2; }
  check "$@"
fi
