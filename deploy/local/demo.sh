#!/usr/bin/env bash
# The demo on a fresh Debian/Ubuntu machine, no Docker needed: prepares PostgreSQL and RabbitMQ
# (services.sh), builds the relay if needed, creates a demo database with an outbox table, starts the
# relay, writes a few outbox rows and shows them arriving on the exchange. Ctrl-C ends it. On the
# way out it stops the relay and drops the demo's replication slot, so that no slot is left to hold
# WAL on this server.
set -euo pipefail
cd "$(dirname "$0")/../.."

bash deploy/local/services.sh
if ! command -v mvn >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends openjdk-17-jdk-headless maven
fi
# Debian's Maven 3.8 writes colour resets (ESC[0m) even in batch mode.
[ -f connector/target/outbox-relay.jar ] || mvn -B -q package -DskipTests 2>&1 | sed 's/\x1b\[[0-9;]*m//g'

CONFIG=deploy/demo/relay.properties
JAR=connector/target/outbox-relay.jar
psql_demo() { psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q "$@"; }

# A fresh demo database each time: the relay's stored offset from an earlier run would point
# before the slot a new run creates, which Debezium rightly refuses.
psql -h 127.0.0.1 -U postgres -qAtc "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'outbox_demo' AND NOT active" >/dev/null
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS outbox_demo WITH (FORCE)"
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE outbox_demo"
psql_demo -d outbox_demo -f deploy/sql/outbox.sql

# tail --declare creates the exchange (and a queue bound to it) before check looks for it.
java -jar "$JAR" tail --config "$CONFIG" --declare --timeout 60 --count 5 &
TAIL=$!
sleep 2
java -jar "$JAR" check --config "$CONFIG" || true

bin/outbox-relay run --config "$CONFIG" > /tmp/outbox-demo-relay.log 2>&1 &
RELAY=$!
cleanup() {
  kill $TAIL 2>/dev/null || true
  if kill $RELAY 2>/dev/null; then
    wait $RELAY 2>/dev/null || true
  fi
  # The slot would keep every WAL segment written from now on; the demo needs it no more.
  for _ in $(seq 1 20); do
    [ "$(psql -h 127.0.0.1 -U postgres -Atc "SELECT active FROM pg_replication_slots WHERE slot_name = 'outbox_demo'")" = "t" ] || break
    sleep 0.5
  done
  psql -h 127.0.0.1 -U postgres -qAtc "SELECT pg_drop_replication_slot('outbox_demo') FROM pg_replication_slots WHERE slot_name = 'outbox_demo'" >/dev/null || true
}
trap cleanup EXIT
# Wait until the relay streams (its slot is active), then write the outbox rows.
for _ in $(seq 1 60); do
  [ "$(psql -h 127.0.0.1 -U postgres -Atc "SELECT active FROM pg_replication_slots WHERE slot_name = 'outbox_demo'")" = "t" ] && break
  sleep 0.5
done
echo "writing 5 outbox rows (2 aggregates) ..."
psql_demo -d outbox_demo <<'SQL'
BEGIN;
INSERT INTO outbox_event (aggregatetype, aggregateid, type, payload) VALUES
  ('order', 'order-1', 'OrderPlaced',  '{"orderId": "order-1", "total": 42.50}'),
  ('order', 'order-2', 'OrderPlaced',  '{"orderId": "order-2", "total": 7.00}'),
  ('order', 'order-1', 'OrderPaid',    '{"orderId": "order-1"}');
COMMIT;
INSERT INTO outbox_event (aggregatetype, aggregateid, type, payload) VALUES ('order', 'order-1', 'OrderShipped', '{"orderId": "order-1"}');
INSERT INTO outbox_event (aggregatetype, aggregateid, type, payload) VALUES ('order', 'order-2', 'OrderCancelled', '{"orderId": "order-2"}');
SQL
wait $TAIL
echo "demo done; relay log: /tmp/outbox-demo-relay.log (the relay is stopped and its slot dropped on exit)"
