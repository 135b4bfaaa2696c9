#!/usr/bin/env bash
# Prepares Debezium Server 3.6.1 for the benchmark's comparison (bench/run.sh --debezium-server):
# the distribution from Maven Central, unpacked into bench/target/debezium-server without the
# connectors and optional libraries it does not need here. Run from anywhere; idempotent.
set -euo pipefail
cd "$(dirname "$0")"
version=3.6.1.Final
home=target/debezium-server
# Debian's Maven 3.8 writes colour resets (ESC[0m) even in batch mode.
mvn() { command mvn "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g'; }
if [ -f "$home/.version" ] && [ "$(cat "$home/.version")" = "$version" ]; then
  exit 0
fi
mvn -B -q dependency:copy -Dartifact="io.debezium:debezium-server-dist:$version:tar.gz" -DoutputDirectory=target
rm -rf "$home" target/debezium-server.tmp
mkdir -p target/debezium-server.tmp
tar xzf "target/debezium-server-dist-$version.tar.gz" -C target/debezium-server.tmp \
  --exclude 'debezium-server/connectors/*' --exclude 'debezium-server/lib_opt/*'
mv target/debezium-server.tmp/debezium-server "$home"
rmdir target/debezium-server.tmp
rm "target/debezium-server-dist-$version.tar.gz"
echo "$version" > "$home/.version"
