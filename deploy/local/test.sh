#!/usr/bin/env bash
# The project's test command on a fresh Debian/Ubuntu machine: installs a JDK and Maven if missing,
# prepares PostgreSQL (wal_level=logical) and RabbitMQ with services.sh, then runs every unit and
# integration test, then validates deploy/ (manifests, dashboard, alerts) with deploy/validate.sh.
# Extra arguments go to Maven, e.g. deploy/local/test.sh -pl offset-store.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v mvn >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openjdk-17-jdk-headless maven
fi

bash deploy/local/services.sh
mvn -B verify "$@"
bash deploy/validate.sh
