-- A least-privilege role for outbox-relay. Run as the outbox table's owner (or a superuser) in the
-- application database, e.g.:
--   psql -v relay_password="'s3cret'" -f deploy/sql/relay-role.sql app
-- Then configure the relay with debezium.source.database.user=outbox_relay and
-- debezium.source.publication.autocreate.mode=disabled (the publication below is made for it).

-- Logical replication needs REPLICATION; nothing else is granted beyond the tables below.
CREATE ROLE outbox_relay WITH LOGIN REPLICATION PASSWORD :relay_password;
GRANT CONNECT ON DATABASE :"DBNAME" TO outbox_relay;
GRANT USAGE ON SCHEMA public TO outbox_relay;

-- Read the outbox (Debezium reads the table's metadata and, with snapshot.mode=initial, its rows).
GRANT SELECT ON outbox_event TO outbox_relay;
-- Only with relay.outbox.retention.ms (deleting rows already relayed):
-- GRANT DELETE ON outbox_event TO outbox_relay;

-- The publication must be created by the table owner; inserts only, the router ignores the rest.
CREATE PUBLICATION outbox_relay FOR TABLE outbox_event WITH (publish = 'insert');

-- Offsets and dead letters live beside the outbox; the relay creates them when it may, or uses these.
CREATE TABLE IF NOT EXISTS outbox_relay_offsets (
    namespace    text        NOT NULL,
    offset_key   bytea       NOT NULL,
    offset_value bytea,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (namespace, offset_key)
);
CREATE TABLE IF NOT EXISTS outbox_relay_dead_letter (
    id           bigserial   PRIMARY KEY,
    relay_name   text        NOT NULL,
    event_id     text,
    reason       text        NOT NULL,
    exchange     text,
    routing_key  text,
    payload      bytea,
    headers      jsonb,
    source_topic text,
    aggregate_id text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    redriven_at  timestamptz,
    redrive_publishing_id bigint,
    UNIQUE (relay_name, event_id, reason)
);
-- How relay.dead-letter.order=keep-aggregate finds an aggregate's parked events (asked for every batch while any are parked).
CREATE INDEX IF NOT EXISTS outbox_relay_dead_letter_parked_by_aggregate ON outbox_relay_dead_letter (relay_name, aggregate_id, id) WHERE redriven_at IS NULL;
-- Which relay publishes into a stream under which producer name (the stream sink; see docs/guarantees.md: Exactly once into a stream).
CREATE TABLE IF NOT EXISTS outbox_relay_stream_producers (
    producer   text        NOT NULL,
    stream     text        NOT NULL,
    relay_name text        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (producer, stream)
);
-- Leadership for hot standbys (relay.standby): one lease row per relay name, fencing every offset write, and who runs.
CREATE TABLE IF NOT EXISTS outbox_relay_leases (
    name        text        PRIMARY KEY,
    epoch       bigint      NOT NULL,
    holder      text        NOT NULL,
    host        text        NOT NULL,
    pid         bigint      NOT NULL,
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox_relay_leases_members (
    name       text        NOT NULL,
    member     text        NOT NULL,
    host       text        NOT NULL,
    pid        bigint      NOT NULL,
    role       text        NOT NULL,
    started_at timestamptz NOT NULL,
    seen_at    timestamptz NOT NULL,
    PRIMARY KEY (name, member)
);
GRANT SELECT, INSERT, UPDATE, DELETE ON outbox_relay_offsets, outbox_relay_dead_letter, outbox_relay_leases, outbox_relay_leases_members,
    outbox_relay_stream_producers TO outbox_relay;
GRANT USAGE ON SEQUENCE outbox_relay_dead_letter_id_seq TO outbox_relay;
