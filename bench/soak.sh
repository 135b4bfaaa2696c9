#!/usr/bin/env bash
# The soak: a steady load for a while through a leader and a hot standby, with faults injected at
# random (the leader killed, RabbitMQ restarted, connections cut, PostgreSQL restarted); prints losses
# (must be 0), duplicates and recovery times. bench/soak.sh --help for options.
exec "$(dirname "$0")/launch.sh" Soak "$@"
