#!/usr/bin/env bash
# Shared by run.sh and soak.sh: prepares the local servers, builds the relay and the bench module,
# resolves the classpaths, and runs the given main class of io.outboxrelay.bench with the arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
main="$1"; shift
bash deploy/local/services.sh >/dev/null
# Debian's Maven 3.8 writes colour resets (ESC[0m) even in batch mode; they would lead every output.
mvn() { command mvn "$@" 2>&1 | sed 's/\x1b\[[0-9;]*m//g'; }
mvn -B -q install -DskipTests -Dmaven.test.skip.exec=true
mvn -B -q -pl bench dependency:build-classpath -Dmdep.outputFile=target/classpath.txt -Dmdep.includeScope=runtime
mvn -B -q -f bench/perftest/pom.xml dependency:build-classpath -Dmdep.outputFile=../target/perftest-classpath.txt
exec java -XX:+UseZGC -Xms1g -Dperftest.classpath="$(cat bench/target/perftest-classpath.txt)" \
  -cp "bench/target/classes:$(cat bench/target/classpath.txt)" "io.outboxrelay.bench.$main" "$@"
