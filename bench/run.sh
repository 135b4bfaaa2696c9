#!/usr/bin/env bash
# The benchmark: the relay as a process of its own through the bulk, small-transaction and steady
# workloads, verified, beside RabbitMQ PerfTest's ceiling (and Debezium Server with
# --debezium-server); one table. bench/run.sh --help for options.
for arg in "$@"; do
  if [ "$arg" = "--debezium-server" ]; then
    bash "$(dirname "$0")/debezium-server.sh" || exit 1
  fi
done
exec "$(dirname "$0")/launch.sh" Benchmark "$@"
