#!/usr/bin/env bash
# The benchmark: prepares the local servers (deploy/local/services.sh), builds the relay, then runs
# io.outboxrelay.bench.Benchmark, which starts bin/outbox-relay as a process of its own for each
# workload and prints one table. Options go to the benchmark: bench/run.sh --help.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/local/services.sh >/dev/null
mvn -B -q install -DskipTests -Dmaven.test.skip.exec=true
mvn -B -q -pl bench dependency:build-classpath -Dmdep.outputFile=target/classpath.txt -Dmdep.includeScope=runtime
mvn -B -q -f bench/perftest/pom.xml dependency:build-classpath -Dmdep.outputFile=../target/perftest-classpath.txt
exec java -XX:+UseSerialGC -Dperftest.classpath="$(cat bench/target/perftest-classpath.txt)" \
  -cp "bench/target/classes:$(cat bench/target/classpath.txt)" io.outboxrelay.bench.Benchmark "$@"
