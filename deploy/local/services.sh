#!/usr/bin/env bash
# Prepares a Debian/Ubuntu development or CI machine for outbox-relay: installs PostgreSQL and
# RabbitMQ when missing, gives PostgreSQL logical decoding, starts both when stopped, and waits
# until they answer. Idempotent: a second run changes nothing. Needs root (or sudo).
#
# Not for production: it trusts loopback connections so that tests and the demo need no password.
set -euo pipefail

log() { printf 'services: %s\n' "$*"; }
die() { printf 'services: ERROR: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root, or install sudo"
  SUDO="sudo"
fi

PG_PORT="${PGPORT:-5432}"
APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" = 0 ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q
    APT_UPDATED=1
  fi
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# --- installation ------------------------------------------------------------------------------
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing PostgreSQL"
  apt_install postgresql postgresql-contrib
fi
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  log "installing RabbitMQ"
  apt_install rabbitmq-server
fi

PG_VERSION="$(ls /etc/postgresql | sort -V | tail -n 1)"
[ -n "$PG_VERSION" ] || die "no PostgreSQL cluster under /etc/postgresql"
PG_CONF_DIR="/etc/postgresql/$PG_VERSION/main"
[ -d "$PG_CONF_DIR" ] || die "no 'main' cluster for PostgreSQL $PG_VERSION (create one with pg_createcluster $PG_VERSION main)"

# --- PostgreSQL configuration ------------------------------------------------------------------
changed=0
write_if_different() { # path content
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; then
    printf '%s\n' "$2" | $SUDO tee "$1" >/dev/null
    changed=1
  fi
}
$SUDO mkdir -p "$PG_CONF_DIR/conf.d"
grep -qE "^\s*include_dir\s*=\s*'conf.d'" "$PG_CONF_DIR/postgresql.conf" \
  || die "$PG_CONF_DIR/postgresql.conf does not include conf.d; add: include_dir = 'conf.d'"
write_if_different "$PG_CONF_DIR/conf.d/50-outbox-relay.conf" "# Written by outbox-relay deploy/local/services.sh: logical decoding for the relay.
wal_level = logical
max_replication_slots = 32
max_wal_senders = 32"

# Loopback trust for ordinary and replication connections (development machines only).
HBA="$PG_CONF_DIR/pg_hba.conf"
for line in "host replication all 127.0.0.1/32 trust" "host all all 127.0.0.1/32 trust" "local replication all trust"; do
  if ! grep -qxF "$line" "$HBA"; then
    # Prepended: pg_hba.conf is read top-down and the first matching line wins.
    $SUDO sed -i "1i $line" "$HBA"
    changed=1
  fi
done

pg_running() { $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main status >/dev/null 2>&1; }
if ! pg_running; then
  log "starting PostgreSQL $PG_VERSION"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
elif [ "$changed" = 1 ]; then
  wal_level="$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc 'SHOW wal_level' 2>/dev/null || true)"
  if [ "$wal_level" != "logical" ]; then
    log "restarting PostgreSQL $PG_VERSION for wal_level=logical"
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main restart
  else
    $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main reload
  fi
fi

# --- RabbitMQ ----------------------------------------------------------------------------------
if ! $SUDO rabbitmqctl -q status >/dev/null 2>&1; then
  log "starting RabbitMQ"
  $SUDO rabbitmq-server -detached
fi

# --- wait until both answer --------------------------------------------------------------------
for _ in $(seq 1 60); do
  psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc 'SELECT 1' >/dev/null 2>&1 && break
  sleep 1
done
wal_level="$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc 'SHOW wal_level' 2>/dev/null)" \
  || die "PostgreSQL does not answer on 127.0.0.1:$PG_PORT"
if [ "$wal_level" != "logical" ]; then
  # A server started before this script ran (by systemd, say) keeps its old wal_level until restarted.
  log "restarting PostgreSQL $PG_VERSION for wal_level=logical (was $wal_level)"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main restart
  wal_level="$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc 'SHOW wal_level')"
  [ "$wal_level" = "logical" ] || die "PostgreSQL still runs with wal_level=$wal_level"
fi
$SUDO timeout 120 rabbitmqctl -q await_startup >/dev/null 2>&1 \
  || die "RabbitMQ did not start within 120 s (see /var/log/rabbitmq/)"

# Streams for debezium.sink.type=rabbitmqstream: enabling a plugin on a running node needs no restart.
if ! $SUDO rabbitmq-plugins list -e -m 2>/dev/null | grep -qx rabbitmq_stream; then
  log "enabling RabbitMQ's rabbitmq_stream plugin (stream listener on 5552)"
  $SUDO rabbitmq-plugins enable -q rabbitmq_stream >/dev/null
fi
for _ in $(seq 1 30); do
  (exec 3<>/dev/tcp/127.0.0.1/5552) 2>/dev/null && break
  sleep 1
done
(exec 3<>/dev/tcp/127.0.0.1/5552) 2>/dev/null || die "RabbitMQ's stream listener does not answer on 127.0.0.1:5552"

log "PostgreSQL $PG_VERSION on 127.0.0.1:$PG_PORT (wal_level=logical) and RabbitMQ on 127.0.0.1:5672 (streams :5552) are ready"
