#!/usr/bin/env bash
# The benchmark: the relay as a process of its own through the bulk, small-transaction and steady
# workloads, verified, beside RabbitMQ PerfTest's ceiling; one table. bench/run.sh --help for options.
exec "$(dirname "$0")/launch.sh" Benchmark "$@"
