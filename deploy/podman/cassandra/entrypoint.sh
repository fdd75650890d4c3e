#!/bin/sh
# Starts one Cassandra node in the foreground as PID 1 (the stand-in image's entrypoint): renders
# scripts/cassandra's cassandra.yaml template for this container's address, then execs the JVM with
# the same options scripts/cassandra.sh uses on the host, CASSANDRA_FAST=1 included (no fsync, no
# wait for gossip, no snapshots; compose.test.yml sets it). The JRE and the jars are bind mounts
# (see the Dockerfile).
set -eu
HOME_DIR=/opt/cassandra
JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
if ! ls "$HOME_DIR"/lib/jamm-*.jar >/dev/null 2>&1 || ! command -v "$JAVA" >/dev/null; then
  echo "cassandra stand-in: mount the Cassandra jars at $HOME_DIR/lib and a JDK 17 at \$JAVA_HOME" \
    "(deploy/podman/compose.test.yml does, for scripts/compose-test.sh)" >&2
  exit 1
fi
DATA=/var/lib/cassandra
ADDRESS=$(hostname -i | awk '{print $1}')
CLUSTER=${CASSANDRA_CLUSTER_NAME:-Test Cluster}
HEAP=${MAX_HEAP_SIZE:-1G}
NEW=${HEAP_NEWSIZE:-200M}
AUTO_SNAPSHOT=true
FAST_FLAGS=""
if [ "${CASSANDRA_FAST:-0}" = 1 ]; then
  AUTO_SNAPSHOT=false
  FAST_FLAGS="-Dcassandra.skip_sync=true -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.unsafesystem=true"
fi
mkdir -p "$DATA/data" "$DATA/commitlog" "$DATA/hints" "$DATA/saved_caches" "$DATA/cdc_raw" "$DATA/logs"
# One node owning the whole ring: num_tokens 1 with an explicit token starts fastest. CQL listens on
# every interface (as the official image does) and advertises the container's address.
sed -e "s|@CLUSTER_NAME@|$CLUSTER|g" -e "s|@INITIAL_TOKEN@|-9223372036854775808|g" \
    -e "s|@NODE_DIR@|$DATA|g" -e "s|@SEEDS@|$ADDRESS:7000|g" -e "s|@ADDRESS@|$ADDRESS|g" \
    -e "s|@AUTO_SNAPSHOT@|$AUTO_SNAPSHOT|g" \
    -e "s|^rpc_address: .*|rpc_address: 0.0.0.0\nbroadcast_rpc_address: $ADDRESS|" \
    "$HOME_DIR/cassandra.yaml.in" > "$HOME_DIR/conf/cassandra.yaml"
printf 'dc=datacenter1\nrack=rack1\n' > "$HOME_DIR/conf/cassandra-rackdc.properties"
cp "$HOME_DIR/logback.xml" "$HOME_DIR/conf/logback.xml"
JAMM=$(ls "$HOME_DIR"/lib/jamm-*.jar | head -n 1)
# shellcheck disable=SC2046,SC2086 # one flag per word, none contains spaces
exec "$JAVA" "-Xms$HEAP" "-Xmx$HEAP" "-Xmn$NEW" -Xss256k \
  -XX:+UseG1GC -XX:MaxGCPauseMillis=300 -XX:+ParallelRefProcEnabled \
  -XX:+PerfDisableSharedMem -XX:+ExitOnOutOfMemoryError \
  -Djava.net.preferIPv4Stack=true \
  $(cat "$HOME_DIR/jvm.flags") \
  "-javaagent:$JAMM" \
  -Dcassandra-foreground=yes \
  "-Dcassandra.config=file://$HOME_DIR/conf/cassandra.yaml" \
  "-Dcassandra-rackdc.properties=file://$HOME_DIR/conf/cassandra-rackdc.properties" \
  "-Dcassandra.storagedir=$DATA" \
  "-Dcassandra.logdir=$DATA/logs" \
  "-Dlogback.configurationFile=$HOME_DIR/conf/logback.xml" \
  -Dcassandra.jmx.local.port=7199 \
  $FAST_FLAGS \
  -cp "$HOME_DIR/conf:$HOME_DIR/lib/*" org.apache.cassandra.service.CassandraDaemon
