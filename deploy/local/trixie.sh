#!/usr/bin/env bash
# RabbitMQ 4.0 and PostgreSQL 17 from Debian trixie's own packages, beside the machine's servers.
#
# Builds a trixie root with debootstrap (Debian's packages only, no containers), installs
# rabbitmq-server and postgresql-17 into it, and runs both from it on other ports:
#
#   PostgreSQL 17  127.0.0.1:${TRIXIE_PG_PORT:-5433}   (trust on loopback, wal_level=logical)
#   RabbitMQ 4.0   127.0.0.1:${TRIXIE_AMQP_PORT:-5673} AMQP, :${TRIXIE_STREAM_PORT:-5553} streams
#
# Usage: deploy/local/trixie.sh [up|down|env|rabbitmqctl ARGS…|pg-stop|pg-start|status]
#   up           build the root when missing, start both servers, wait until they answer (idempotent)
#   down         stop both servers and unmount what up mounted (/proc, /sys, /dev, /dev/pts in the root)
#   env          print the OUTBOX_RELAY_TEST_* switches that point the integration tests at them
#   rabbitmqctl  run trixie's rabbitmqctl against the RabbitMQ 4.0 node
#   pg-stop / pg-start   stop (fast) / start the PostgreSQL 17 server (used by the fault tests)
#
# The root lives in ${OUTBOX_RELAY_TRIXIE_ROOT:-/var/cache/outbox-relay/trixie}; it is made once
# (a few minutes, about 600 MB) and reused. Needs root: debootstrap, chroot and bind mounts.
# Not for production: like services.sh, it trusts loopback connections.
set -euo pipefail

ROOT="${OUTBOX_RELAY_TRIXIE_ROOT:-/var/cache/outbox-relay/trixie}"
MIRROR="${DEBIAN_MIRROR:-}"
PG_PORT="${TRIXIE_PG_PORT:-5433}"
AMQP_PORT="${TRIXIE_AMQP_PORT:-5673}"
STREAM_PORT="${TRIXIE_STREAM_PORT:-5553}"
DIST_PORT="${TRIXIE_DIST_PORT:-25673}"
NODE="rabbit4@localhost"
PG_DATA=/var/lib/postgresql/17/outbox-relay
PG_LOG=/var/lib/postgresql/17/outbox-relay.log

log() { printf 'trixie: %s\n' "$*"; }
die() { printf 'trixie: ERROR: %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "run as root (debootstrap, chroot and mount need it)"

in_root() { chroot "$ROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"; }

mount_once() { # source target
  mkdir -p "$ROOT$2"
  mountpoint -q "$ROOT$2" || mount --bind "$1" "$ROOT$2"
}

mounts() {
  mount_once /proc /proc
  mount_once /sys /sys
  mount_once /dev /dev
  mount_once /dev/pts /dev/pts
}

# What mounts() mounted, innermost first, so the root can be removed or cleaned once the servers are down. A mount
# still busy (a server's last process not gone yet) is detached lazily: gone from view now, freed when let go.
unmounts() {
  local m
  for m in /dev/pts /dev /sys /proc; do
    if mountpoint -q "$ROOT$m" 2>/dev/null; then
      umount "$ROOT$m" 2>/dev/null || umount -l "$ROOT$m" || die "cannot unmount $ROOT$m"
    fi
  done
}

# The archive this machine's own apt installs its release from (its sources.list or deb822 .sources),
# so the root comes from the same package source the machine is configured with: no host is named here.
machine_archive() {
  local codename uri f files=()
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && files+=("$f")
  done
  [ "${#files[@]}" -gt 0 ] || return 1
  codename="$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")"
  [ -n "$codename" ] || return 1
  uri="$(awk -v want="$codename" '
    FNR == 1 { uris = ""; suites = "" }
    /^deb[ \t]/ { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { if ($(i + 1) == want) { print $i; exit } ; break } }
    /^URIs:/ { uris = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == want && uris != "") { print uris; exit } }
    /^$/ { uris = "" }
  ' "${files[@]}" | head -n 1)"
  [ -n "$uri" ] && printf '%s\n' "$uri"
}

build_root() {
  [ -x "$ROOT/usr/lib/postgresql/17/bin/postgres" ] && [ -x "$ROOT/usr/sbin/rabbitmq-server" ] && return 0
  if [ -z "$MIRROR" ]; then
    MIRROR="$(machine_archive)" || die "cannot tell which Debian archive this machine's apt uses (/etc/apt/sources.list*): set DEBIAN_MIRROR"
  fi
  command -v debootstrap >/dev/null || {
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
  }
  if [ ! -x "$ROOT/usr/bin/apt-get" ]; then
    log "debootstrap trixie into $ROOT (from $MIRROR)"
    mkdir -p "$ROOT"
    debootstrap --variant=minbase trixie "$ROOT" "$MIRROR"
  fi
  # Packages' maintainer scripts must not try to start services inside the root.
  printf '#!/bin/sh\nexit 101\n' > "$ROOT/usr/sbin/policy-rc.d"
  chmod +x "$ROOT/usr/sbin/policy-rc.d"
  mounts
  log "installing rabbitmq-server and postgresql-17 into the trixie root"
  in_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
  in_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    rabbitmq-server postgresql-17 ca-certificates procps
}

rabbit_env() {
  printf '%s\n' "NODENAME=$NODE" "NODE_PORT=$AMQP_PORT" "DIST_PORT=$DIST_PORT" \
    "CONFIG_FILE=/etc/rabbitmq/rabbitmq" "ENABLED_PLUGINS_FILE=/etc/rabbitmq/enabled_plugins" > "$ROOT/etc/rabbitmq/rabbitmq-env.conf"
  printf '%s\n' "listeners.tcp.default = 127.0.0.1:$AMQP_PORT" \
    "stream.listeners.tcp.default = 127.0.0.1:$STREAM_PORT" \
    "stream.advertised_host = localhost" "stream.advertised_port = $STREAM_PORT" \
    "loopback_users = none" "management.tcp.port = 15673" > "$ROOT/etc/rabbitmq/rabbitmq.conf"
  printf '%s\n' "[rabbitmq_stream]." > "$ROOT/etc/rabbitmq/enabled_plugins"
}

rabbit_running() { in_root rabbitmqctl -n "$NODE" -q status >/dev/null 2>&1; }
rabbitctl() { in_root rabbitmqctl -n "$NODE" "$@"; }

rabbit_up() {
  rabbit_env
  if ! rabbit_running; then
    log "starting RabbitMQ $(in_root dpkg-query -W -f '${Version}' rabbitmq-server) as $NODE on :$AMQP_PORT (streams :$STREAM_PORT)"
    # Its own epmd would collide with the machine's on 4369; the machine's serves both nodes.
    in_root sh -c 'HOME=/var/lib/rabbitmq rabbitmq-server -detached' 
    for _ in $(seq 1 90); do rabbit_running && break; sleep 1; done
    rabbit_running || die "RabbitMQ 4.0 did not start; see $ROOT/var/log/rabbitmq/"
  fi
  rabbitctl -q await_startup
}

pg_ctl() { in_root su postgres -s /bin/sh -c "/usr/lib/postgresql/17/bin/pg_ctl -D $PG_DATA $*"; }

pg_up() {
  if [ ! -f "$ROOT$PG_DATA/PG_VERSION" ]; then
    log "initdb PostgreSQL 17 in $PG_DATA"
    in_root install -d -o postgres -g postgres /var/lib/postgresql/17 "$PG_DATA" /run/postgresql
    in_root su postgres -s /bin/sh -c "/usr/lib/postgresql/17/bin/initdb -D $PG_DATA -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >/dev/null"
    printf '%s\n' "listen_addresses = '127.0.0.1'" "port = $PG_PORT" "wal_level = logical" \
      "max_replication_slots = 32" "max_wal_senders = 32" "unix_socket_directories = '/run/postgresql'" \
      "fsync = off" >> "$ROOT$PG_DATA/postgresql.conf"
    printf '%s\n' "local all all trust" "host all all 127.0.0.1/32 trust" "host replication all 127.0.0.1/32 trust" \
      > "$ROOT$PG_DATA/pg_hba.conf"
  fi
  # Inside the root only: on the host, $ROOT/var/run is a symbolic link to the machine's own /run.
  in_root install -d -o postgres -g postgres /run/postgresql
  if ! pg_ctl status >/dev/null 2>&1; then
    log "starting PostgreSQL 17 on :$PG_PORT"
    pg_ctl -l $PG_LOG -w start >/dev/null
  fi
  for _ in $(seq 1 30); do
    in_root su postgres -s /bin/sh -c "psql -h 127.0.0.1 -p $PG_PORT -Atc 'select 1'" >/dev/null 2>&1 && break; sleep 1
  done
  in_root su postgres -s /bin/sh -c "psql -h 127.0.0.1 -p $PG_PORT -Atc \"SELECT 'x' FROM pg_database WHERE datname='test'\"" | grep -q x \
    || in_root su postgres -s /bin/sh -c "createdb -h 127.0.0.1 -p $PG_PORT test"
}

case "${1:-up}" in
  up)
    build_root
    mounts
    pg_up
    rabbit_up
    log "PostgreSQL 17 on 127.0.0.1:$PG_PORT and RabbitMQ 4.0 on 127.0.0.1:$AMQP_PORT (streams :$STREAM_PORT) are ready"
    ;;
  down)
    # Nothing to stop in a root never built (a run that failed before the trixie phase calls this too).
    if [ -x "$ROOT/usr/sbin/rabbitmq-server" ] && mountpoint -q "$ROOT/proc" 2>/dev/null; then
      rabbit_running && rabbitctl -q stop || true
      pg_ctl status >/dev/null 2>&1 && pg_ctl -m fast stop >/dev/null || true
    fi
    unmounts
    ;;
  env)
    self="$(cd "$(dirname "$0")" && pwd)/trixie.sh"
    printf '%s\n' "export OUTBOX_RELAY_TEST_PG=127.0.0.1:$PG_PORT" "export OUTBOX_RELAY_TEST_AMQP=127.0.0.1:$AMQP_PORT" \
      "export OUTBOX_RELAY_TEST_STREAM=127.0.0.1:$STREAM_PORT" \
      "export OUTBOX_RELAY_TEST_RABBITMQCTL='$self rabbitmqctl'" "export OUTBOX_RELAY_TEST_PG_CTL='$self'"
    ;;
  rabbitmqctl) shift; mounts; rabbitctl "$@" ;;
  rabbit-start) mounts; rabbit_up ;;
  pg-stop) pg_ctl -m fast stop >/dev/null ;;
  pg-start) mounts; pg_ctl -l $PG_LOG -w start >/dev/null ;;
  status)
    rabbit_running && log "RabbitMQ 4.0 up" || log "RabbitMQ 4.0 down"
    pg_ctl status >/dev/null 2>&1 && log "PostgreSQL 17 up" || log "PostgreSQL 17 down"
    ;;
  *) die "unknown command '$1' (up, down, env, rabbitmqctl, pg-stop, pg-start, status)" ;;
esac
