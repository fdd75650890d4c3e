#!/usr/bin/env bash
# Runs a real Apache Cassandra cluster on this machine, without Docker, from Maven Central jars.
#
# Usage:
#   scripts/cassandra.sh start [--nodes N] [--dcs a,b,c]
#       Fetches the jars if missing, starts N nodes (default 1) on 127.0.0.1 ... 127.0.0.N
#       (CQL 9042, storage 7000 on each), and returns once every node answers CQL.
#       Node i is in datacenter i of --dcs (default: every node in "datacenter1").
#       Without flags, a run dir that already holds a cluster restarts that cluster as it was.
#   scripts/cassandra.sh stop       SIGTERM every node by its PID file, SIGKILL after 30 s.
#   scripts/cassandra.sh status     One line per node; exit 0 only if every node answers CQL.
#   scripts/cassandra.sh answers    Exit 0 if a Cassandra answers CQL on the first address of
#                                   CASSANDRA_HOSTS (default 127.0.0.1:9042), whichever checkout
#                                   started it: for scripts that reuse one and never stop it.
#   scripts/cassandra.sh wipe       stop, then delete the run dir's nodes (data, config, logs).
#   scripts/cassandra.sh fetch      Resolve and download the jars (newest 5.0.x unless
#                                   CASSANDRA_VERSION is set) without starting anything.
#   scripts/cassandra.sh nodetool [--node I] ARGS...   nodetool against node I (default 1).
#   scripts/cassandra.sh start-tls  One more single node whose CQL port speaks only TLS
#                                   (client_encryption_options, optional: false), for the
#                                   origin's TLS tests: 127.0.0.1, CQL 9142, storage 7100, JMX
#                                   7299 (clear of the main node and the --nodes clusters), own
#                                   cluster name, run dir CASSANDRA_TLS_DIR. Its keystore is made
#                                   on first start with keytool (a test CA and a node certificate
#                                   for IP 127.0.0.1); the CA is exported as PEM to
#                                   $CASSANDRA_TLS_DIR/ca.pem (the origin's CASSANDRA_TLS_CA_FILE).
#                                   Returns once the TLS port accepts connections.
#   scripts/cassandra.sh stop-tls   Stops that node by its PID file.
#
# Environment:
#   CASSANDRA_RUN_DIR        absolute; per-node config, data, logs, PID files (default .run/cassandra)
#   CASSANDRA_CACHE_DIR      absolute; the jars, downloaded once (default .cache/cassandra)
#   CASSANDRA_VERSION        exact version, e.g. 5.0.9 (default: newest cached 5.0.x, else the
#                            newest 5.0.x on Maven Central)
#   CASSANDRA_HEAP           JVM heap per node (default 1g)
#   CASSANDRA_FAST=1         tests only: no commit-log fsync, no wait for gossip to settle, no
#                            flush of system tables on schema changes, no snapshot on DROP/TRUNCATE
#   CASSANDRA_START_TIMEOUT  seconds before start gives up (default 240)
#   CASSANDRA_TLS_DIR        absolute; start-tls's run dir: node, keystore, ca.pem
#                            (default .run/cassandra-tls)
#   JAVA_HOME                Java 11 or 17 (default: java on PATH)
#
# Requires java, python3 (probe, standard library only) and, for the first fetch, mvn.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$SCRIPT_DIR/.." && pwd)
SUPPORT_DIR="$SCRIPT_DIR/cassandra"
PROBE="$SUPPORT_DIR/cqlprobe.py"

CACHE_DIR=${CASSANDRA_CACHE_DIR:-$REPO_DIR/.cache/cassandra}
RUN_DIR=${CASSANDRA_RUN_DIR:-$REPO_DIR/.run/cassandra}
HEAP=${CASSANDRA_HEAP:-1g}
FAST=${CASSANDRA_FAST:-0}
START_TIMEOUT=${CASSANDRA_START_TIMEOUT:-240}
TLS_DIR=${CASSANDRA_TLS_DIR:-$REPO_DIR/.run/cassandra-tls}

readonly CLUSTER_NAME=seedsync
readonly NATIVE_PORT=9042
readonly STORAGE_PORT=7000
readonly JMX_BASE_PORT=7199   # node i: 127.0.0.1:(7199 + i - 1), loopback only
readonly MAX_NODES=32
readonly DEFAULT_DC=datacenter1
readonly DEFAULT_RACK=rack1
readonly VERSION_RANGE='[5.0.0,5.0.999]'
readonly STOP_GRACE=30
readonly MAIN_CLASS=org.apache.cassandra.service.CassandraDaemon

# Java 17 module access Cassandra 5.0 needs (its jvm17-server.options); nodetool needs it too.
readonly MODULE_FLAGS=(
  -Djdk.attach.allowAttachSelf=true
  -Dio.netty.tryReflectionSetAccessible=true
  --add-exports=java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports=java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports=java.management/com.sun.jmx.remote.security=ALL-UNNAMED
  --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports=java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports=java.sql/java.sql=ALL-UNNAMED
  --add-exports=java.base/java.lang.ref=ALL-UNNAMED
  --add-exports=jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-opens=java.base/java.lang.module=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens=java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens=java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens=java.base/java.io=ALL-UNNAMED
  --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens=java.base/java.lang=ALL-UNNAMED
  --add-opens=java.base/java.util=ALL-UNNAMED
  --add-opens=java.base/java.nio=ALL-UNNAMED
  --add-opens=jdk.management/com.sun.management.internal=ALL-UNNAMED
)

# Filled by ensure_jars / find_java.
LIB_DIR=
CASSANDRA_RESOLVED_VERSION=
JAVA=
# Nodes launched by this invocation (stopped again if start fails or is interrupted).
LAUNCHED=()

say() { printf 'cassandra: %s\n' "$*"; }
warn() { printf 'cassandra: %s\n' "$*" >&2; }
die() {
  warn "error: $*"
  exit 1
}

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

check_settings() {
  case $RUN_DIR in /?*) ;; *) die "CASSANDRA_RUN_DIR must be an absolute path (got '$RUN_DIR')" ;; esac
  case $CACHE_DIR in /?*) ;; *) die "CASSANDRA_CACHE_DIR must be an absolute path (got '$CACHE_DIR')" ;; esac
  RUN_DIR=${RUN_DIR%/}
  CACHE_DIR=${CACHE_DIR%/}
  [[ $RUN_DIR != *[\'$'\n']* ]] || die "CASSANDRA_RUN_DIR must not contain quotes or newlines"
  [[ $HEAP =~ ^[0-9]+[mMgG]$ ]] || die "CASSANDRA_HEAP must look like 512m or 1g (got '$HEAP')"
  [[ $START_TIMEOUT =~ ^[0-9]+$ ]] || die "CASSANDRA_START_TIMEOUT must be a number of seconds"
  [[ $FAST =~ ^[01]?$ ]] || die "CASSANDRA_FAST must be 0 or 1"
  command -v python3 >/dev/null || die "python3 is required (CQL readiness probe)"
}

node_addr() { printf '127.0.0.%s' "$1"; }
node_dir() { printf '%s/node%s' "$RUN_DIR" "$1"; }
pid_file() { printf '%s/node%s/cassandra.pid' "$RUN_DIR" "$1"; }
# JMX_BASE: JMX_BASE_PORT, or the TLS node's (start-tls).
JMX_BASE=$JMX_BASE_PORT
# CQL_PORT: the native port stop waits on (NATIVE_PORT, or the TLS node's).
CQL_PORT=$NATIVE_PORT
jmx_port() { printf '%s' $((JMX_BASE + $1 - 1)); }

# Prints the PID of node $1 if its PID file names a live Cassandra process of this run dir.
# Checks the command line, so a recycled PID is never taken for a node.
node_pid() {
  local file pid cmdline
  file=$(pid_file "$1")
  [[ -f $file ]] || return 1
  read -r pid <"$file" || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  { cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline"); } 2>/dev/null || return 1
  [[ $cmdline == *"$MAIN_CLASS"* && $cmdline == *"$(node_dir "$1")/conf/cassandra.yaml"* ]] || return 1
  printf '%s' "$pid"
}

cql_ping() { python3 "$PROBE" ping "$(node_addr "$1")" "$NATIVE_PORT" 2>/dev/null; }
cql_info() { python3 "$PROBE" info "$(node_addr "$1")" "$NATIVE_PORT" 2>/dev/null; }

# True if something accepts TCP connections on $1:$2.
port_open() {
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

# "127.0.0.1:9042" or "127.0.0.1..127.0.0.3:9042".
addr_range() {
  if (($1 == 1)); then
    printf '%s:%s' "$(node_addr 1)" "$NATIVE_PORT"
  else
    printf '%s..%s:%s' "$(node_addr 1)" "$(node_addr "$1")" "$NATIVE_PORT"
  fi
}

# First file matching a glob pattern ($1 is a directory, $2 a pattern), or nothing.
first_match() {
  local f
  for f in "$1"/$2; do
    [[ -e $f ]] && printf '%s' "$f" && return 0
  done
  return 1
}

lock_run_dir() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/.lock"
  flock -w 300 9 || die "another scripts/cassandra.sh is busy with $RUN_DIR"
}

# ---------------------------------------------------------------------------------------------
# Topology of the run dir: cluster.conf records what the nodes were first started with.
TOPO_NODES=
TOPO_DCS=
read_topology() {
  TOPO_NODES=
  TOPO_DCS=
  local file="$RUN_DIR/cluster.conf" key value
  [[ -f $file ]] || return 0
  while IFS='=' read -r key value; do
    case $key in
      nodes) TOPO_NODES=$value ;;
      dcs) TOPO_DCS=$value ;;
    esac
  done <"$file"
}

write_topology() {
  printf 'nodes=%s\ndcs=%s\n' "$1" "$2" >"$RUN_DIR/cluster.conf.tmp"
  mv -f "$RUN_DIR/cluster.conf.tmp" "$RUN_DIR/cluster.conf"
}

# Number of nodes to look at for stop/status: the recorded topology, else node dirs present.
known_nodes() {
  read_topology
  local n=${TOPO_NODES:-0} d i
  for d in "$RUN_DIR"/node*; do
    [[ -d $d ]] || continue
    i=${d##*/node}
    [[ $i =~ ^[0-9]+$ ]] && ((i > n)) && n=$i
  done
  printf '%s' "$n"
}

# ---------------------------------------------------------------------------------------------
# Jars: $CACHE_DIR/versions/<version>/lib/*.jar, complete when COMPLETE lists every jar.
version_complete() {
  local dir="$CACHE_DIR/versions/$1" jar n=0
  [[ -f $dir/COMPLETE ]] || return 1
  while read -r jar; do
    [[ -s $dir/lib/$jar ]] || return 1
    n=$((n + 1))
  done <"$dir/COMPLETE"
  ((n > 10))
}

newest_cached_version() {
  local d v best=
  for d in "$CACHE_DIR"/versions/5.0.*; do
    [[ -d $d ]] || continue
    v=${d##*/}
    version_complete "$v" || continue
    best=$(printf '%s\n%s\n' "$best" "$v" | sed '/^$/d' | sort -V | tail -n 1)
  done
  printf '%s' "$best"
}

# Downloads the runtime classpath for version spec $1 (exact or a Maven range).
download_jars() {
  local spec=$1 stage jar version dest started=$SECONDS
  command -v mvn >/dev/null || die "mvn (Maven) is required to fetch the Cassandra jars"
  mkdir -p "$CACHE_DIR"
  stage=$(mktemp -d "$CACHE_DIR/stage.XXXXXX")
  say "fetching org.apache.cassandra:cassandra-all:$spec and its runtime dependencies (Maven Central)"
  if ! (cd "$stage" && mvn -B -q -Dstyle.color=never -f "$SUPPORT_DIR/pom.xml" \
    -Dmaven.repo.local="$CACHE_DIR/m2" \
    -Dcassandra.version="$spec" \
    dependency:copy-dependencies -DoutputDirectory="$stage/lib") >"$stage/mvn.log" 2>&1; then
    warn "mvn failed; last lines of its log:"
    tail -n 30 "$stage/mvn.log" >&2 || true
    rm -rf "$stage"
    die "could not fetch Cassandra $spec"
  fi
  jar=$(first_match "$stage/lib" 'cassandra-all-*.jar') || jar=
  jar=${jar##*/}
  [[ -n $jar ]] || {
    rm -rf "$stage"
    die "mvn ran but no cassandra-all jar arrived"
  }
  version=${jar#cassandra-all-}
  version=${version%.jar}
  (cd "$stage/lib" && ls -- *.jar) >"$stage/COMPLETE"
  dest="$CACHE_DIR/versions/$version"
  mkdir -p "$CACHE_DIR/versions"
  if version_complete "$version"; then
    rm -rf "$stage"
  else
    rm -rf "$dest"
    mv "$stage" "$dest"
  fi
  say "Cassandra $version: $(wc -l <"$dest/COMPLETE") jars in $dest/lib ($((SECONDS - started)) s)"
  CASSANDRA_RESOLVED_VERSION=$version
}

# Sets LIB_DIR and CASSANDRA_RESOLVED_VERSION. $1=refresh: resolve the newest version online.
ensure_jars() {
  local refresh=${1:-} version
  mkdir -p "$CACHE_DIR"
  exec 8>"$CACHE_DIR/.lock"
  flock -w 600 8 || die "another process holds $CACHE_DIR/.lock"
  if [[ -n ${CASSANDRA_VERSION:-} ]]; then
    version=$CASSANDRA_VERSION
    [[ $version =~ ^[0-9][0-9A-Za-z.-]*$ ]] || die "CASSANDRA_VERSION must be an exact version like 5.0.9"
    version_complete "$version" || download_jars "$version"
  else
    version=$(newest_cached_version)
    if [[ -z $version || $refresh == refresh ]]; then
      download_jars "$VERSION_RANGE"
      version=$CASSANDRA_RESOLVED_VERSION
    fi
  fi
  exec 8>&-
  CASSANDRA_RESOLVED_VERSION=$version
  LIB_DIR="$CACHE_DIR/versions/$version/lib"
}

find_java() {
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
    JAVA=$JAVA_HOME/bin/java
  else
    JAVA=$(command -v java) || die "java is required (Java 11 or 17)"
  fi
  local major
  major=$("$JAVA" -version 2>&1 | sed -n '1s/.*version "\([0-9]*\).*/\1/p')
  case $major in
    11 | 17) ;;
    *) warn "warning: Cassandra 5.0 supports Java 11 and 17; $JAVA is Java '${major:-?}'" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Per-node configuration.
render_template() {
  local text=$1
  shift
  shopt -u patsub_replacement 2>/dev/null || true
  while (($# >= 2)); do
    text=${text//"@$1@"/"$2"}
    shift 2
  done
  printf '%s\n' "$text"
}

write_node_config() {
  local i=$1 nodes=$2 dc=$3 token=$4 dir seeds="" j template
  dir=$(node_dir "$i")
  mkdir -p "$dir/conf/triggers" "$dir/logs" "$dir/data" "$dir/commitlog" "$dir/hints" \
    "$dir/saved_caches" "$dir/cdc_raw"
  for ((j = 1; j <= nodes; j++)); do
    seeds+="${seeds:+,}$(node_addr "$j"):$STORAGE_PORT"
  done
  template=$(<"$SUPPORT_DIR/cassandra.yaml.in")
  render_template "$template" \
    CLUSTER_NAME "$CLUSTER_NAME" \
    INITIAL_TOKEN "$token" \
    NODE_DIR "$dir" \
    SEEDS "$seeds" \
    ADDRESS "$(node_addr "$i")" \
    AUTO_SNAPSHOT "$([[ $FAST == 1 ]] && printf false || printf true)" >"$dir/conf/cassandra.yaml"
  printf 'dc=%s\nrack=%s\n' "$dc" "$DEFAULT_RACK" >"$dir/conf/cassandra-rackdc.properties"
  cp "$SUPPORT_DIR/logback.xml" "$dir/conf/logback.xml"
}

java_opts() {
  local i=$1 dir jamm
  dir=$(node_dir "$i")
  jamm=$(first_match "$LIB_DIR" 'jamm-*.jar') || die "jamm jar missing from $LIB_DIR"
  JAVA_OPTS=(
    "-Xms$HEAP" "-Xmx$HEAP" -Xss256k
    -XX:+UseG1GC -XX:MaxGCPauseMillis=300 -XX:+ParallelRefProcEnabled
    -XX:G1RSetUpdatingPauseTimePercent=5 -XX:InitiatingHeapOccupancyPercent=70
    -XX:+UseThreadPriorities -XX:+PerfDisableSharedMem -XX:+ExitOnOutOfMemoryError
    -XX:StringTableSize=1000003
    "-Xlog:gc=info:file=$dir/logs/gc.log:time,uptime:filecount=3,filesize=5M"
    -Djava.net.preferIPv4Stack=true
    "${MODULE_FLAGS[@]}"
    "-javaagent:$jamm"
    -Dcassandra-foreground=yes
    "-Dcassandra.config=file://$dir/conf/cassandra.yaml"
    "-Dcassandra-rackdc.properties=file://$dir/conf/cassandra-rackdc.properties"
    "-Dcassandra.storagedir=$dir"
    "-Dcassandra.logdir=$dir/logs"
    "-Dlogback.configurationFile=$dir/conf/logback.xml"
    "-Dcassandra.triggers_dir=$dir/conf/triggers"
    "-Dcassandra.jmx.local.port=$(jmx_port "$i")"
  )
  if [[ $FAST == 1 ]]; then
    JAVA_OPTS+=(
      -Dcassandra.skip_sync=true
      -Dcassandra.skip_wait_for_gossip_to_settle=0
      -Dcassandra.unsafesystem=true
    )
  fi
}

launch_node() {
  local i=$1 dir
  dir=$(node_dir "$i")
  java_opts "$i"
  {
    printf '==== %s starting node %s (%s)%s\n' "$(date -Is)" "$i" "$(node_addr "$i")" \
      "$([[ $FAST == 1 ]] && printf ', CASSANDRA_FAST=1')"
  } >>"$dir/logs/stdout.log"
  # The subshell execs setsid, which execs nohup, which execs java: all keep the subshell's
  # PID, so $! is the JVM's PID. fd 9 (our lock) is closed so the node does not hold it.
  (
    exec 9>&-
    cd "$dir"
    exec setsid nohup "$JAVA" "${JAVA_OPTS[@]}" -cp "$dir/conf:$LIB_DIR/*" "$MAIN_CLASS" \
      </dev/null >>"$dir/logs/stdout.log" 2>&1
  ) &
  local pid=$! tries
  printf '%s\n' "$pid" >"$dir/cassandra.pid"
  LAUNCHED+=("$i")
  # Wait (briefly) until the exec chain has reached java, so node_pid recognises the node.
  for ((tries = 0; tries < 100; tries++)); do
    node_pid "$i" >/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  node_pid "$i" >/dev/null || fail_start "$i" "node $i did not start (pid $pid)"
}

print_log_tail() {
  local i=$1 dir
  dir=$(node_dir "$i")
  if [[ -s $dir/logs/system.log ]]; then
    warn "---- last lines of $dir/logs/system.log ----"
    tail -n 30 "$dir/logs/system.log" >&2 || true
  fi
  if [[ -s $dir/logs/stdout.log ]]; then
    # Only this launch's part (each launch starts with a "==== ... starting node" line).
    warn "---- last lines of $dir/logs/stdout.log ----"
    awk '/^==== .* starting node /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' \
      "$dir/logs/stdout.log" | tail -n 20 >&2 || true
  fi
}

# ---------------------------------------------------------------------------------------------
# Stops the given nodes (all known nodes if none given): SIGTERM, wait, SIGKILL.
stop_nodes() {
  local -a nodes=("$@") live=() pids=()
  local i pid waited file
  if ((${#nodes[@]} == 0)); then
    local n
    n=$(known_nodes)
    for ((i = 1; i <= n; i++)); do nodes+=("$i"); done
  fi
  for i in "${nodes[@]}"; do
    if pid=$(node_pid "$i"); then
      kill -TERM "$pid" 2>/dev/null || true
      live+=("$i")
      pids+=("$pid")
    fi
  done
  if ((${#live[@]} == 0)); then
    for i in "${nodes[@]}"; do rm -f "$(pid_file "$i")"; done
    return 0
  fi
  say "stopping ${#live[@]} node(s): pid ${pids[*]}"
  local start=$SECONDS still
  for ((waited = 0; waited < STOP_GRACE * 4; waited++)); do
    still=0
    for i in "${live[@]}"; do node_pid "$i" >/dev/null && still=1; done
    ((still == 0)) && break
    sleep 0.25
  done
  for i in "${live[@]}"; do
    if pid=$(node_pid "$i"); then
      warn "node $i (pid $pid) did not stop within ${STOP_GRACE}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((waited = 0; waited < 40; waited++)); do
        node_pid "$i" >/dev/null || break
        sleep 0.25
      done
    fi
  done
  for i in "${nodes[@]}"; do
    file=$(pid_file "$i")
    if ! node_pid "$i" >/dev/null; then rm -f "$file"; fi
  done
  # The kernel may still accept on a dead JVM's sockets for a moment (its process is gone, its
  # listeners are not yet): wait, boundedly, so a cluster started right after finds them free.
  for i in "${live[@]}"; do
    for ((waited = 0; waited < 40; waited++)); do
      port_open "$(node_addr "$i")" "$CQL_PORT" || port_open 127.0.0.1 "$(jmx_port "$i")" || break
      sleep 0.25
    done
  done
  say "stopped in $((SECONDS - start)) s"
}

on_start_interrupted() {
  trap - INT TERM
  warn "interrupted; stopping the nodes this start launched"
  ((${#LAUNCHED[@]} == 0)) || stop_nodes "${LAUNCHED[@]}"
  exit 130
}

fail_start() {
  local i=$1
  shift
  warn "error: $*"
  print_log_tail "$i"
  trap - INT TERM
  if ((${#LAUNCHED[@]} > 0)); then
    warn "stopping the nodes this start launched"
    stop_nodes "${LAUNCHED[@]}" >&2
  fi
  exit 1
}

cmd_start() {
  local want_nodes="" want_dcs=""
  while (($# > 0)); do
    case $1 in
      --nodes)
        (($# >= 2)) || die "--nodes needs a number"
        want_nodes=$2
        shift 2
        ;;
      --nodes=*) want_nodes=${1#--nodes=} && shift ;;
      --dcs)
        (($# >= 2)) || die "--dcs needs a comma-separated list"
        want_dcs=$2
        shift 2
        ;;
      --dcs=*) want_dcs=${1#--dcs=} && shift ;;
      -h | --help) usage && exit 0 ;;
      *) die "start: unknown argument '$1'" ;;
    esac
  done
  if [[ -n $want_nodes ]]; then
    if ! [[ $want_nodes =~ ^[0-9]+$ ]] || ((want_nodes < 1 || want_nodes > MAX_NODES)); then
      die "--nodes must be between 1 and $MAX_NODES"
    fi
  fi
  local -a dcs=()
  if [[ -n $want_dcs ]]; then
    IFS=',' read -r -a dcs <<<"$want_dcs"
    local dc
    for dc in "${dcs[@]}"; do
      [[ $dc =~ ^[A-Za-z0-9_-]+$ ]] || die "--dcs: bad datacenter name '$dc' (letters, digits, _ and -)"
    done
    if [[ -z $want_nodes ]]; then
      want_nodes=${#dcs[@]}
    elif ((${#dcs[@]} != want_nodes)); then
      die "--dcs names ${#dcs[@]} datacenter(s) for $want_nodes node(s); give one per node"
    fi
  fi

  lock_run_dir
  read_topology
  local nodes dcs_csv
  if [[ -z $want_nodes && -n $TOPO_NODES ]]; then
    nodes=$TOPO_NODES
    dcs_csv=$TOPO_DCS
  else
    nodes=${want_nodes:-1}
    if ((${#dcs[@]} == 0)); then
      local k
      for ((k = 0; k < nodes; k++)); do dcs+=("$DEFAULT_DC"); done
    fi
    dcs_csv=$(
      IFS=,
      printf '%s' "${dcs[*]}"
    )
    if [[ -n $TOPO_NODES && ($TOPO_NODES != "$nodes" || $TOPO_DCS != "$dcs_csv") ]]; then
      die "$RUN_DIR holds a cluster of $TOPO_NODES node(s) in datacenters $TOPO_DCS; \
run 'scripts/cassandra.sh wipe' first, or use another CASSANDRA_RUN_DIR"
    fi
  fi
  IFS=',' read -r -a dcs <<<"$dcs_csv"

  # Which nodes run already, which must be launched?
  local i pid all_up=1
  local -a to_launch=() to_wait=()
  for ((i = 1; i <= nodes; i++)); do
    if pid=$(node_pid "$i"); then
      cql_ping "$i" || all_up=0
      to_wait+=("$i")
    else
      all_up=0
      to_launch+=("$i")
    fi
  done
  if ((all_up == 1)); then
    say "already running: $nodes node(s) answering CQL on $(addr_range "$nodes")"
    return 0
  fi

  local started=$SECONDS
  if ((${#to_launch[@]} > 0)); then
    for i in "${to_launch[@]}"; do
      local addr
      addr=$(node_addr "$i")
      port_open "$addr" "$NATIVE_PORT" &&
        die "$addr:$NATIVE_PORT is already taken by a process this run dir does not know \
(another cluster under a different CASSANDRA_RUN_DIR?)"
      port_open "$addr" "$STORAGE_PORT" &&
        die "$addr:$STORAGE_PORT is already taken by a process this run dir does not know"
      port_open 127.0.0.1 "$(jmx_port "$i")" &&
        die "JMX port 127.0.0.1:$(jmx_port "$i") (node $i) is already taken"
    done
    ensure_jars
    find_java
    local -a tokens=()
    mapfile -t tokens < <(python3 "$PROBE" tokens "$nodes")
    ((${#tokens[@]} == nodes)) || die "could not compute initial tokens"
    write_topology "$nodes" "$dcs_csv"
    trap on_start_interrupted INT TERM
    for i in "${to_launch[@]}"; do
      write_node_config "$i" "$nodes" "${dcs[i - 1]}" "${tokens[i - 1]}"
      launch_node "$i"
      to_wait+=("$i")
    done
    say "launched node(s) ${to_launch[*]} of $nodes (Cassandra $CASSANDRA_RESOLVED_VERSION, heap $HEAP\
$([[ $FAST == 1 ]] && printf ', FAST'))"
  fi

  # Wait until every node answers CQL (OPTIONS/STARTUP handshake); with several nodes, also
  # until each one sees all peers with an agreeing schema version (gossip has converged).
  local deadline=$((started + START_TIMEOUT)) info peers agreed
  local -a pending=("${to_wait[@]}") next=()
  local -A answered=()
  while ((${#pending[@]} > 0)); do
    next=()
    for i in "${pending[@]}"; do
      if ! node_pid "$i" >/dev/null; then
        fail_start "$i" "node $i ($(node_addr "$i")) exited during startup"
      fi
      if [[ -z ${answered[$i]:-} ]]; then
        if cql_ping "$i"; then
          answered[$i]=1
          say "node $i ($(node_addr "$i"):$NATIVE_PORT) answers CQL after $((SECONDS - started)) s"
        else
          next+=("$i")
          continue
        fi
      fi
      if ((nodes > 1)); then
        info=$(cql_info "$i") || info=
        peers=$(sed -n 's/.* peers=\([0-9]*\).*/\1/p' <<<"$info")
        agreed=$(sed -n 's/.* agreed=\([0-9]*\).*/\1/p' <<<"$info")
        if ((${peers:-0} < nodes - 1 || ${agreed:-0} < nodes - 1)); then
          next+=("$i")
          continue
        fi
      fi
    done
    pending=("${next[@]}")
    ((${#pending[@]} == 0)) && break
    if ((SECONDS >= deadline)); then
      fail_start "${pending[0]}" "node ${pending[0]} ($(node_addr "${pending[0]}")) not ready \
after ${START_TIMEOUT}s"
    fi
    sleep 1
  done
  trap - INT TERM
  say "up: $nodes node(s) of cluster '$CLUSTER_NAME' on $(addr_range "$nodes") \
in $((SECONDS - started)) s (run dir $RUN_DIR)"
}

cmd_stop() {
  (($# == 0)) || die "stop takes no arguments"
  lock_run_dir
  local n
  n=$(known_nodes)
  if ((n == 0)); then
    say "nothing to stop"
    return 0
  fi
  stop_nodes
}

cmd_status() {
  (($# == 0)) || die "status takes no arguments"
  local n i pid info dc all_up=1
  n=$(known_nodes)
  read_topology
  if ((n == 0)); then
    say "no cluster in $RUN_DIR"
    say "node1 $(node_addr 1):$NATIVE_PORT pid=- down"
    return 1
  fi
  local -a dcs=()
  IFS=',' read -r -a dcs <<<"$TOPO_DCS"
  for ((i = 1; i <= n; i++)); do
    dc=${dcs[i - 1]:-?}
    if pid=$(node_pid "$i"); then
      if info=$(cql_info "$i"); then
        say "node$i $(node_addr "$i"):$NATIVE_PORT pid=$pid up $info"
      else
        say "node$i $(node_addr "$i"):$NATIVE_PORT pid=$pid down (process running, CQL not answering) dc=$dc"
        all_up=0
      fi
    else
      say "node$i $(node_addr "$i"):$NATIVE_PORT pid=- down dc=$dc"
      all_up=0
    fi
  done
  ((all_up == 1))
}

cmd_answers() {
  (($# == 0)) || die "answers takes no arguments"
  local first=${CASSANDRA_HOSTS:-127.0.0.1:9042}
  first=${first%%,*}
  python3 "$PROBE" ping "${first%:*}" "${first##*:}" >/dev/null 2>&1
}

cmd_wipe() {
  (($# == 0)) || die "wipe takes no arguments"
  [[ $RUN_DIR != / ]] || die "refusing to wipe /"
  lock_run_dir
  stop_nodes
  local d removed=0
  for d in "$RUN_DIR"/node*; do
    [[ -d $d && ${d##*/node} =~ ^[0-9]+$ ]] || continue
    rm -rf -- "$d"
    removed=$((removed + 1))
  done
  rm -rf -- "$RUN_DIR/nodetool"
  rm -f -- "$RUN_DIR/cluster.conf" "$RUN_DIR/cluster.conf.tmp"
  say "wiped $removed node dir(s) under $RUN_DIR (jar cache kept in $CACHE_DIR)"
}

cmd_fetch() {
  (($# == 0)) || die "fetch takes no arguments"
  ensure_jars refresh
  say "Cassandra $CASSANDRA_RESOLVED_VERSION ready in $LIB_DIR"
}

cmd_nodetool() {
  local i=1
  if [[ ${1:-} == --node ]]; then
    i=${2:-}
    shift 2 || die "--node needs a number"
  fi
  [[ $i =~ ^[0-9]+$ ]] || die "--node needs a number"
  ensure_jars
  find_java
  # nodetool keeps a history file in ~/.cassandra: keep it (and any log) in the run dir.
  mkdir -p "$RUN_DIR/nodetool"
  exec "$JAVA" -Xmx256m "${MODULE_FLAGS[@]}" -cp "$LIB_DIR/*" -Duser.home="$RUN_DIR/nodetool" \
    -Dlogback.configurationFile="$SUPPORT_DIR/logback.xml" -Dcassandra.logdir="$RUN_DIR/nodetool" \
    org.apache.cassandra.tools.NodeTool -h 127.0.0.1 -p "$(jmx_port "$i")" "$@"
}

# ---------------------------------------------------------------------------------------------
# The TLS-only node (start-tls, stop-tls): node 1 of its own run dir, on ports of its own.
readonly TLS_NATIVE_PORT=9142
readonly TLS_STORAGE_PORT=7100
readonly TLS_JMX_PORT=7299
# Test material only: the keystore protects nothing but a throwaway test CA's node key.
readonly TLS_STORE_PASSWORD=seedsync-test-only

use_tls_dir() {
  case $TLS_DIR in /?*) ;; *) die "CASSANDRA_TLS_DIR must be an absolute path (got '$TLS_DIR')" ;; esac
  [[ $TLS_DIR != *[\'$'\n']* ]] || die "CASSANDRA_TLS_DIR must not contain quotes or newlines"
  RUN_DIR=${TLS_DIR%/}
  JMX_BASE=$TLS_JMX_PORT
  CQL_PORT=$TLS_NATIVE_PORT
}

# A test CA and a node certificate it signed (SAN IP 127.0.0.1: the driver checks the IP it
# dialled), in PKCS12 keystores; the CA also as PEM for the origin. Made once per run dir.
make_tls_keystore() {
  local dir=$RUN_DIR/tls keytool
  [[ -s $dir/node.p12 && -s $RUN_DIR/ca.pem ]] && return 0
  keytool=$(dirname "$JAVA")/keytool
  [[ -x $keytool ]] || keytool=$(command -v keytool) || die "keytool (from the JDK) is required"
  rm -rf -- "$dir"
  mkdir -p "$dir"
  local -a store=(-storetype PKCS12 -storepass "$TLS_STORE_PASSWORD" -keypass "$TLS_STORE_PASSWORD")
  {
    "$keytool" -genkeypair -keystore "$dir/ca.p12" "${store[@]}" -alias ca -keyalg RSA -keysize 2048 \
      -validity 3650 -dname "CN=seedsync test Cassandra CA" -ext bc:c
    "$keytool" -exportcert -rfc -keystore "$dir/ca.p12" -storetype PKCS12 \
      -storepass "$TLS_STORE_PASSWORD" -alias ca -file "$dir/ca.pem"
    "$keytool" -genkeypair -keystore "$dir/node.p12" "${store[@]}" -alias node -keyalg RSA \
      -keysize 2048 -validity 3650 -dname "CN=127.0.0.1"
    "$keytool" -certreq -keystore "$dir/node.p12" -storetype PKCS12 \
      -storepass "$TLS_STORE_PASSWORD" -alias node -file "$dir/node.csr"
    "$keytool" -gencert -keystore "$dir/ca.p12" -storetype PKCS12 -storepass "$TLS_STORE_PASSWORD" \
      -alias ca -infile "$dir/node.csr" -outfile "$dir/node.pem" -rfc -validity 3650 \
      -ext san=ip:127.0.0.1,dns:localhost -ext ku:c=digitalSignature,keyEncipherment \
      -ext eku=serverAuth
    "$keytool" -importcert -noprompt -keystore "$dir/node.p12" -storetype PKCS12 \
      -storepass "$TLS_STORE_PASSWORD" -alias ca -file "$dir/ca.pem"
    "$keytool" -importcert -noprompt -keystore "$dir/node.p12" -storetype PKCS12 \
      -storepass "$TLS_STORE_PASSWORD" -alias node -file "$dir/node.pem"
  } >"$dir/keytool.log" 2>&1 || {
    cat "$dir/keytool.log" >&2
    die "keytool failed (log above)"
  }
  cp "$dir/ca.pem" "$RUN_DIR/ca.pem"
}

cmd_start_tls() {
  (($# == 0)) || die "start-tls takes no arguments"
  use_tls_dir
  lock_run_dir
  if node_pid 1 >/dev/null && port_open 127.0.0.1 "$TLS_NATIVE_PORT"; then
    say "TLS node already running: 127.0.0.1:$TLS_NATIVE_PORT (CA $RUN_DIR/ca.pem)"
    return 0
  fi
  local port
  for port in "$TLS_NATIVE_PORT" "$TLS_STORAGE_PORT" "$TLS_JMX_PORT"; do
    port_open 127.0.0.1 "$port" && die "127.0.0.1:$port is already taken (the TLS node needs it)"
  done
  ensure_jars
  find_java
  make_tls_keystore
  local started=$SECONDS dir token
  token=$(python3 "$PROBE" tokens 1)
  write_topology 1 "$DEFAULT_DC"
  write_node_config 1 1 "$DEFAULT_DC" "$token"
  dir=$(node_dir 1)
  # The shared template with this node's ports and name, and client encryption required.
  sed -i -e "s/^cluster_name: .*/cluster_name: '$CLUSTER_NAME-tls'/" \
    -e "s/^storage_port: .*/storage_port: $TLS_STORAGE_PORT/" \
    -e "s/^native_transport_port: .*/native_transport_port: $TLS_NATIVE_PORT/" \
    -e "s/- seeds: .*/- seeds: '127.0.0.1:$TLS_STORAGE_PORT'/" "$dir/conf/cassandra.yaml"
  cat >>"$dir/conf/cassandra.yaml" <<YAML

# start-tls: CQL only over TLS (a plain client is refused).
client_encryption_options:
  enabled: true
  optional: false
  keystore: '$RUN_DIR/tls/node.p12'
  keystore_password: '$TLS_STORE_PASSWORD'
  store_type: PKCS12
  require_client_auth: false
YAML
  trap on_start_interrupted INT TERM
  launch_node 1
  say "launched the TLS node (heap $HEAP$([[ $FAST == 1 ]] && printf ', FAST'))"
  local deadline=$((started + START_TIMEOUT))
  until port_open 127.0.0.1 "$TLS_NATIVE_PORT"; do
    node_pid 1 >/dev/null || fail_start 1 "the TLS node exited during startup"
    ((SECONDS < deadline)) || fail_start 1 "the TLS node not ready after ${START_TIMEOUT}s"
    sleep 1
  done
  trap - INT TERM
  say "up: TLS-only CQL on 127.0.0.1:$TLS_NATIVE_PORT in $((SECONDS - started)) s \
(CA $RUN_DIR/ca.pem, run dir $RUN_DIR)"
}

cmd_stop_tls() {
  (($# == 0)) || die "stop-tls takes no arguments"
  use_tls_dir
  lock_run_dir
  stop_nodes 1
}

main() {
  local cmd=${1:-}
  (($# > 0)) && shift
  case $cmd in
    start | stop | status | answers | wipe | fetch | nodetool | start-tls | stop-tls) check_settings ;;
  esac
  case $cmd in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    answers) cmd_answers "$@" ;;
    wipe) cmd_wipe "$@" ;;
    fetch) cmd_fetch "$@" ;;
    nodetool) cmd_nodetool "$@" ;;
    start-tls) cmd_start_tls "$@" ;;
    stop-tls) cmd_stop_tls "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
