# shellcheck shell=bash
# What every script that runs a local server of ours (scripts/nats.sh, scripts/jaeger.sh) does
# alike: messages, the PID-file check, start-up in its own session, waiting for health and
# stopping by PID. Sourced, never run. Each caller sets SV_NAME (the message prefix) first and
# keeps what differs (configs, health checks, ports) to itself.
#
# The rules these functions keep, so a caller cannot forget one:
# - a PID from a PID file counts only if that process's command line still names the server
#   and its config, so a recycled PID is never signalled;
# - servers are stopped by their PID (SIGTERM, SIGKILL after a grace), never by name;
# - a server is started with setsid so a test's process-group kill does not reach it, and with
#   the caller's lock (fd 9) closed so it never holds it.

sv_say() { printf '%s: %s\n' "$SV_NAME" "$*"; }
sv_warn() { printf '%s: %s\n' "$SV_NAME" "$*" >&2; }
sv_die() {
  sv_warn "error: $*"
  exit 1
}

# The caller's header comment (from line 2 to `set -euo`), as its usage text.
sv_usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$1"
}

# Whether something accepts TCP connections on PORT (on HOST, by default 127.0.0.1).
sv_port_open() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "${2:-127.0.0.1}" "$1" 2>/dev/null
}

# Dies naming VARIABLE unless VALUE is a TCP port number.
sv_check_port() {
  local variable=$1 value=$2
  [[ $value =~ ^[0-9]+$ ]] && ((value > 0 && value < 65536)) ||
    sv_die "$variable must be a port number (got '$value')"
}

# The go command: $GO, else go on PATH, else /usr/local/go/bin/go.
sv_find_go() {
  if [[ -n ${GO:-} ]]; then
    printf '%s' "$GO"
  elif command -v go >/dev/null; then
    command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then
    printf '%s' /usr/local/go/bin/go
  else
    return 1
  fi
}

# Prints the PID in PID_FILE if that process is alive and its command line contains every
# NEEDLE (the binary's name and its config file); fails otherwise.
sv_live_pid() {
  local file=$1 pid cmdline needle
  shift
  [[ -f $file ]] || return 1
  read -r pid <"$file" || return 1
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  { cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline"); } 2>/dev/null || return 1
  for needle in "$@"; do
    [[ $cmdline == *"$needle"* ]] || return 1
  done
  printf '%s' "$pid"
}

# Starts COMMAND... in its own session, stdin from /dev/null and output appended to LOG_FILE,
# and writes its PID to PID_FILE (exec keeps the subshell's PID, so $! is the server's).
sv_launch() {
  local pid_file=$1 log_file=$2
  shift 2
  (
    exec 9>&-
    exec setsid "$@" </dev/null >>"$log_file" 2>&1
  ) &
  printf '%s\n' "$!" >"$pid_file"
}

# Sends SIGTERM to PID, SIGKILL after GRACE seconds, and waits (up to 5 s more) until it is gone.
sv_stop_pid() {
  local pid=$1 grace=$2 waited
  kill -TERM "$pid" 2>/dev/null || true
  for ((waited = 0; waited < grace * 10; waited++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  sv_warn "pid $pid did not stop within ${grace}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((waited = 0; waited < 50; waited++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
}

# Waits until the command HEALTH... succeeds. Returns 1 (after printing the log's last lines)
# if PID exits first, 2 if TIMEOUT seconds pass first; the caller decides what to clean up.
sv_wait_healthy() {
  local pid=$1 timeout=$2 log_file=$3
  shift 3
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      sv_warn "exited during start-up; last lines of $log_file:"
      tail -n 20 "$log_file" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      sv_warn "not healthy after ${timeout}s. Last lines of $log_file:"
      tail -n 20 "$log_file" >&2 || true
      return 2
    fi
    sleep 0.1
  done
}
