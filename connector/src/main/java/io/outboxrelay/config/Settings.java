package io.outboxrelay.config;

import java.util.regex.Pattern;

import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.CaseInsensitiveValidString;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Range;
import org.apache.kafka.common.config.ConfigDef.Type;
import org.apache.kafka.common.config.ConfigException;

/**
 * Every key of the relay's own namespaces, declared once: name, type, default, validation and
 * meaning, with Kafka's {@link ConfigDef}, as the offset store's {@code PostgresOffsetStoreConfig}
 * declares its own. The loader reads and validates through these declarations, unknown keys are
 * found against them, and the settings tables of {@code docs/configuration.md} are printed from them
 * ({@code outbox-relay settings}; ConfigurationPageTest keeps the page equal to that output). Links in
 * the meanings are relative to {@code docs/}, where the page is.
 */
public final class Settings {

    public static final String RELAY_PREFIX = "relay.";
    public static final String SINK_PREFIX = "debezium.sink.rabbitmq.";
    public static final String STREAM_PREFIX = "debezium.sink.rabbitmqstream.";

    /** RabbitMQ 4's own default max_message_size: what a broker of today takes without configuration. */
    static final int DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
    /** With the engine's queue bound (EngineDefaults), what keeps the shipped launcher's heap safe; see docs/operations.md, Memory and large rows. */
    static final long DEFAULT_MAX_IN_FLIGHT_BYTES = 32L * 1024 * 1024;

    private static final Pattern TABLE = Pattern.compile("([A-Za-z_][A-Za-z0-9_$]*\\.)?[A-Za-z_][A-Za-z0-9_$]*");

    /** The {@code relay.*} keys, prefix included. */
    public static final ConfigDef RELAY = new ConfigDef()
            .define(RELAY_PREFIX + "name", Type.STRING, "outbox-relay", new ConfigDef.NonEmptyString(), Importance.HIGH,
                    "engine name, offset namespace, slot/publication/topic prefix (lower-cased, other than `[a-z0-9_]` → `_`), AMQP `app-id`")
            .define(RELAY_PREFIX + "on-unroutable", Type.STRING, "dead-letter", CaseInsensitiveValidString.in("dead-letter", "fail"), Importance.MEDIUM,
                    "a message RabbitMQ refused (returned for want of a binding, missing exchange, too large): `dead-letter` parks it and goes on; "
                            + "`fail` stops the engine before it — nothing from that event on is acknowledged, so after the fix (a binding, a policy "
                            + "change) and a restart it is delivered or parked")
            .define(RELAY_PREFIX + "on-invalid", Type.STRING, "dead-letter", CaseInsensitiveValidString.in("dead-letter", "fail"), Importance.MEDIUM,
                    "an outbox row the router flagged invalid: same choices; with `fail` nothing behind the row is even published")
            .define(RELAY_PREFIX + "dead-letter.table", Type.STRING, "outbox_relay_dead_letter", Settings::plainTable, Importance.MEDIUM,
                    "in the source database, optionally schema-qualified; created if missing")
            .define(RELAY_PREFIX + "dead-letter.order", Type.STRING, "keep-aggregate", CaseInsensitiveValidString.in("keep-aggregate", "none"),
                    Importance.MEDIUM,
                    "`keep-aggregate`: while an aggregate has an event in the dead-letter table, its later events are parked behind it "
                            + "(the reason names the event they wait for) and `redrive` publishes them in their order; over AMQP an aggregate "
                            + "has one message awaiting its confirm at a time, so that a return or nack cannot be overtaken. `none`: later "
                            + "events are delivered and the parked one comes after them when re-driven. See "
                            + "[Order per aggregate and dead letters](guarantees.md#order-per-aggregate-and-dead-letters)")
            .define(RELAY_PREFIX + "shutdown.grace.ms", Type.LONG, 30_000L, Range.atLeast(0), Importance.LOW,
                    "how long SIGTERM waits for in-flight confirms")
            .define(RELAY_PREFIX + "restart.backoff.initial.ms", Type.LONG, 1_000L, Range.atLeast(0), Importance.LOW,
                    "first pause before the engine is restarted after a failure; it doubles up to `relay.restart.backoff.max.ms`")
            .define(RELAY_PREFIX + "restart.backoff.max.ms", Type.LONG, 60_000L, Range.atLeast(0), Importance.LOW,
                    "longest pause between engine restarts")
            .define(RELAY_PREFIX + "http.enabled", Type.BOOLEAN, true, Importance.LOW, "serve the health and metrics endpoints")
            .define(RELAY_PREFIX + "http.host", Type.STRING, "0.0.0.0", Importance.LOW, "where they listen")
            .define(RELAY_PREFIX + "http.port", Type.INT, 8080, Range.between(0, 65535), Importance.LOW, "their port (`0`: any free port)")
            .define(RELAY_PREFIX + "metrics.poll.ms", Type.LONG, 10_000L, Range.atLeast(1), Importance.LOW,
                    "how often the slot, stored-offset and dead-letter gauges query PostgreSQL")
            .define(RELAY_PREFIX + "log.format", Type.STRING, "text", CaseInsensitiveValidString.in("text", "json"), Importance.LOW,
                    "`json`: one JSON object per line (logback's `JsonEncoder`)")
            .define(RELAY_PREFIX + "publication.columns", Type.LIST, "", Importance.LOW,
                    "the outbox columns PostgreSQL sends, e.g. `id,aggregatetype,aggregateid,type,payload`; empty: those the router's "
                            + "configuration reads, and the primary key (PostgreSQL 15+, the router alone in the chain); `*`: all. See "
                            + "[Publishing only the routed columns](performance.md#publishing-only-the-routed-columns)")
            .define(RELAY_PREFIX + "database.connect.timeout.ms", Type.LONG, 10_000L, Range.atLeast(1), Importance.LOW,
                    "connect and log-in time-out of every PostgreSQL connection the relay opens itself (dead letters, publication set-up, "
                            + "gauges, `check`, `status`, `redrive`)")
            .define(RELAY_PREFIX + "database.socket.timeout.ms", Type.LONG, 30_000L, Range.atLeast(1), Importance.LOW,
                    "the longest wait for one answer on those connections (TCP keep-alive is on too): a half-open connection fails and is "
                            + "opened again instead of hanging")
            .define(RELAY_PREFIX + "standby", Type.BOOLEAN, true, Importance.MEDIUM,
                    "a relay that finds its `relay.name` led by another process waits as a hot standby and takes over when the leader goes; "
                            + "`false`: no lease, and a second relay exits with code 4 as before")
            .define(RELAY_PREFIX + "leader.lease.ms", Type.LONG, 20_000L, Range.atLeast(1_000), Importance.MEDIUM,
                    "how long a lease lasts without renewal: a frozen leader is replaced this long after its last renewal, and a leader that "
                            + "cannot renew stops publishing when it runs out by its own clock. Shorter fails over faster from a freeze, and "
                            + "more readily on a long GC pause or a slow database")
            .define(RELAY_PREFIX + "leader.renew.ms", Type.LONG, 1_000L, Range.atLeast(100), Importance.LOW,
                    "how often the leader renews and a standby looks. A leader that missed two renewals pauses publishing until the next "
                            + "one succeeds; one whose walsender is gone and that missed three is taken over without waiting for the lease "
                            + "(a killed or frozen process)")
            .define(RELAY_PREFIX + "leader.walsender.timeout.ms", Type.LONG, 10_000L, Range.atLeast(0), Importance.MEDIUM,
                    "PostgreSQL's `wal_sender_timeout` for the relay's own replication connection (sent in its start-up options, with or "
                            + "without standbys): the walsender of a relay that stopped answering (frozen, a paused VM, cut off) ends by itself "
                            + "this long after its last answer, without waiting to tell it, so the slot is free for a standby. The relay "
                            + "answers every quarter of it (Debezium's `status.update.interval.ms`), also while RabbitMQ holds it back. "
                            + "`0`: the server's own `wal_sender_timeout`. See [High availability](high-availability.md)")
            .define(RELAY_PREFIX + "leader.table", Type.STRING, "outbox_relay_leases", Settings::plainTable, Importance.LOW,
                    "the lease table, beside the offsets in the offset store's database (and `<table>_members`, who is running); created if missing")
            .define(RELAY_PREFIX + "shard.count", Type.INT, 1, Range.between(1, 64), Importance.MEDIUM,
                    "relays that share the outbox, each decoding its own slot whose publication carries only its aggregates (PostgreSQL 15+); "
                            + "see [Shards](shards-and-streams.md#shards-past-one-decoding-thread)")
            .define(RELAY_PREFIX + "shard.index", Type.INT, null, Importance.MEDIUM,
                    "this relay's shard, `0`..`shard.count`-1; unset: the ordinal at the end of `HOSTNAME` (a StatefulSet pod's, `outbox-relay-2` → 2)")
            .define(RELAY_PREFIX + "outbox.retention.ms", Type.LONG, 0L, Range.atLeast(0), Importance.MEDIUM,
                    "delete outbox rows older than this that are provably behind the stored offset (`0`: never; see "
                            + "[Outbox retention](operations.md#outbox-retention)); needs DELETE on the outbox tables")
            .define(RELAY_PREFIX + "outbox.retention.interval.ms", Type.LONG, 60_000L, Range.atLeast(100), Importance.LOW,
                    "how often retention runs (on the leader)")
            .define(RELAY_PREFIX + "outbox.retention.batch", Type.INT, 1_000, Range.between(1, 1_000_000), Importance.LOW,
                    "rows deleted per transaction")
            .define(RELAY_PREFIX + "outbox.retention.column", Type.STRING, "created_at", Importance.LOW,
                    "the outbox column that says how old a row is");

    /** The {@code debezium.sink.rabbitmq.*} keys, prefix included: Debezium Server's with their meaning, and this project's. */
    public static final ConfigDef SINK = new ConfigDef()
            .define(SINK_PREFIX + "exchange", Type.STRING, "", Importance.HIGH, "exchange when the router gives none (`exchange.template`); empty: the topic name")
            .define(SINK_PREFIX + "routingKey", Type.STRING, "", Importance.MEDIUM,
                    "static routing key. Without `debezium.transforms` and with none of `routingKey`, `routingKey.source`, "
                            + "`routingKeyFromTopicName` and the router's `routing.key.template` set, the relay routes each event by "
                            + "`${aggregatetype}.${type}` (`order.OrderPlaced`; the router's `route.by.field` and `table.field.event.type` columns); "
                            + "`check` shows the key of each kind of event")
            .define(SINK_PREFIX + "routingKey.source", Type.STRING, "static", CaseInsensitiveValidString.in("static", "topic", "key"), Importance.MEDIUM,
                    "`static`: `routingKey`; `topic`: the topic name; `key`: the record key (the plain aggregate id here, not Debezium Server's "
                            + "JSON-serialised key). The router's `routing.key.template` wins over all three")
            .define(SINK_PREFIX + "routingKeyFromTopicName", Type.BOOLEAN, false, Importance.LOW,
                    "deprecated; `true` means `routingKey.source=topic` when that is unset (as before Debezium 3.6)")
            .define(SINK_PREFIX + "autoCreateRoutingKey", Type.BOOLEAN, false, Importance.LOW,
                    "declare a queue named after the routing key (once at start for `static`, once per new key for `topic`)")
            .define(SINK_PREFIX + "routingKeyDurable", Type.BOOLEAN, true, Importance.LOW, "durability of that queue")
            .define(SINK_PREFIX + "deliveryMode", Type.INT, 2, Range.between(1, 2), Importance.LOW, "1 transient, 2 persistent")
            .define(SINK_PREFIX + "ackTimeout", Type.LONG, 30_000L, Range.atLeast(1), Importance.MEDIUM,
                    "ms without a confirm before the channel is replaced and the tail republished")
            .define(SINK_PREFIX + "null.value", Type.STRING, "default", Importance.LOW, "body for a null value (a `route.tombstone.on.empty.payload` tombstone)")
            .define(SINK_PREFIX + "max.in.flight", Type.INT, 1_000, Range.between(1, 65_535), Importance.MEDIUM,
                    "the window: messages published and not yet marked processed, at most (normally the unconfirmed ones; while a dead letter "
                            + "cannot be written, also the confirmed ones waiting behind it)")
            .define(SINK_PREFIX + "max.in.flight.bytes", Type.LONG, DEFAULT_MAX_IN_FLIGHT_BYTES, Range.atLeast(1), Importance.MEDIUM,
                    "the same window in body bytes; a message larger than it goes alone")
            .define(SINK_PREFIX + "max.message.bytes", Type.INT, DEFAULT_MAX_MESSAGE_BYTES, Range.between(1, Integer.MAX_VALUE - 64), Importance.MEDIUM,
                    "a larger body is not published but dead-lettered, with its size in the reason (16 MiB is RabbitMQ 4's default "
                            + "`max_message_size`); raise it together with the broker's and, past ~140 MB, the heap")
            .define(SINK_PREFIX + "retry.backoff.initial.ms", Type.LONG, 100L, Range.atLeast(1), Importance.LOW,
                    "first pause before reconnecting to RabbitMQ after a failure; it doubles up to `retry.backoff.max.ms`")
            .define(SINK_PREFIX + "retry.backoff.max.ms", Type.LONG, 5_000L, Range.atLeast(1), Importance.LOW, "longest pause between reconnections")
            .define(SINK_PREFIX + "sasl.mechanism", Type.STRING, "plain", CaseInsensitiveValidString.in("plain", "external"), Importance.MEDIUM,
                    "`plain`: `connection.username`/`password`; `external`: the TLS client certificate (`connection.ssl.key.store`) is the "
                            + "credential, RabbitMQ's `rabbitmq_auth_mechanism_ssl` maps it to a user");

    /**
     * The {@code debezium.sink.rabbitmqstream.*} keys, prefix included: Debezium Server 3.6's stream
     * sink with its meanings and defaults, and this project's (the window, back-off, sizes).
     */
    public static final ConfigDef STREAM = new ConfigDef()
            .define(STREAM_PREFIX + "host", Type.STRING, "localhost", Importance.HIGH, "RabbitMQ's stream listener (the `rabbitmq_stream` plugin)")
            .define(STREAM_PREFIX + "port", Type.INT, 5552, Range.between(1, 65535), Importance.HIGH, "its port")
            .define(STREAM_PREFIX + "connection.host", Type.STRING, null, Importance.LOW, "deprecated name of `host` (wins when set, as in Debezium Server)")
            .define(STREAM_PREFIX + "connection.port", Type.INT, null, Importance.LOW, "deprecated name of `port`")
            .define(STREAM_PREFIX + "username", Type.STRING, "guest", Importance.HIGH, "RabbitMQ user")
            .define(STREAM_PREFIX + "password", Type.STRING, "guest", Importance.HIGH,
                    "its password; from the secrets directory it is read again at every connection (rotation)")
            .define(STREAM_PREFIX + "virtualHost", Type.STRING, "/", Importance.MEDIUM, "virtual host")
            .define(STREAM_PREFIX + "tls.enable", Type.BOOLEAN, false, Importance.MEDIUM,
                    "TLS to the stream listener, verifying the server certificate (JDK trust store or `tls.trust.store`) and host name")
            .define(STREAM_PREFIX + "tls.serverName", Type.STRING, null, Importance.LOW, "the name the server certificate is for, when `host` is another (an IP address, a proxy): sent as SNI, and the certificate is checked against it (or else against `host`)")
            .define(STREAM_PREFIX + "tls.trust.store", Type.STRING, null, Importance.LOW, "PKCS#12 or JKS trust store with the broker's CA")
            .define(STREAM_PREFIX + "tls.trust.store.password", Type.STRING, null, Importance.LOW, "its password")
            .define(STREAM_PREFIX + "tls.hostname.verification", Type.BOOLEAN, true, Importance.LOW,
                    "`false` skips the host-name check (logged as a warning)")
            .define(STREAM_PREFIX + "rpcTimeout", Type.INT, 10, Range.atLeast(1), Importance.LOW, "seconds an RPC to the broker may take")
            .define(STREAM_PREFIX + "maxProducersByConnection", Type.INT, 256, Range.between(1, 256), Importance.LOW, "stream-client's limit")
            .define(STREAM_PREFIX + "maxTrackingConsumersByConnection", Type.INT, 50, Range.between(1, 255), Importance.LOW, "stream-client's limit")
            .define(STREAM_PREFIX + "maxConsumersByConnection", Type.INT, 256, Range.between(1, 256), Importance.LOW, "stream-client's limit")
            .define(STREAM_PREFIX + "requestedHeartbeat", Type.INT, 60, Range.atLeast(0), Importance.LOW, "heartbeat in seconds")
            .define(STREAM_PREFIX + "requestedMaxFrameSize", Type.INT, 0, Range.atLeast(0), Importance.LOW,
                    "largest frame asked for (`0`: the broker's `stream.frame_max`, 1 MiB by default); a larger message is dead-lettered")
            .define(STREAM_PREFIX + "id", Type.STRING, "rabbitmq-stream", Importance.LOW, "client id shown by the broker")
            .define(STREAM_PREFIX + "stream", Type.STRING, null, Importance.HIGH,
                    "the stream (or super stream) to publish to; unset: the topic name, as Debezium Server's stream name mapper gives it")
            .define(STREAM_PREFIX + "stream.maxAge", Type.STRING, null, Importance.LOW, "ISO-8601 duration (`P7D`) for a stream the relay creates")
            .define(STREAM_PREFIX + "stream.maxLength", Type.STRING, null, Importance.LOW, "byte capacity (`10gb`) for a stream the relay creates")
            .define(STREAM_PREFIX + "stream.maxSegmentSize", Type.STRING, null, Importance.LOW, "segment size (`500mb`) for a stream the relay creates")
            .define(STREAM_PREFIX + "superStream.enable", Type.BOOLEAN, false, Importance.MEDIUM,
                    "publish to a super stream, each aggregate (record key) always to the same partition (RabbitMQ 3.11+)")
            .define(STREAM_PREFIX + "superStream.partitions", Type.INT, 3, Range.atLeast(1), Importance.MEDIUM, "partitions of a super stream the relay creates")
            .define(STREAM_PREFIX + "superStream.bindingKeys", Type.LIST, null, Importance.LOW,
                    "binding keys of a super stream the relay creates, instead of `partitions`")
            .define(STREAM_PREFIX + "producer.name", Type.STRING, null, Importance.MEDIUM,
                    "the named producer whose publishing ids the broker de-duplicates; default: `relay.name`. One relay per name and stream: see "
                            + "[Exactly once into a stream](guarantees.md#exactly-once-into-a-stream)")
            .define(STREAM_PREFIX + "producer.filterValue", Type.STRING, null, Importance.LOW,
                    "an application property whose value becomes the message's filter value (RabbitMQ 3.13+)")
            .define(STREAM_PREFIX + "producer.batchSize", Type.INT, 100, Range.atLeast(1), Importance.LOW, "stream-client's batch size")
            .define(STREAM_PREFIX + "producer.subEntrySize", Type.INT, 1, Range.atLeast(1), Importance.LOW,
                    "messages per sub-entry; above 1 the broker cannot de-duplicate single messages, so it must stay 1 (refused otherwise)")
            .define(STREAM_PREFIX + "producer.maxUnconfirmedMessages", Type.INT, 10_000, Range.atLeast(1), Importance.MEDIUM,
                    "the window: messages published and not yet marked processed, at most")
            .define(STREAM_PREFIX + "producer.batchPublishingDelay", Type.INT, 100, Range.atLeast(0), Importance.LOW,
                    "ms stream-client may wait to fill a batch (its adaptive batching sends at once when the rate is low)")
            .define(STREAM_PREFIX + "producer.confirmTimeout", Type.INT, 30, Range.atLeast(1), Importance.MEDIUM,
                    "seconds without a confirm before the producers are replaced and the tail republished with the same publishing ids")
            .define(STREAM_PREFIX + "producer.enqueueTimeout", Type.INT, 10, Range.atLeast(0), Importance.LOW, "stream-client's enqueue time-out, in seconds")
            .define(STREAM_PREFIX + "batchConfirmTimeout", Type.INT, 30, Range.atLeast(1), Importance.LOW,
                    "accepted for Debezium Server configurations; `producer.confirmTimeout` is the one confirm time-out here")
            .define(STREAM_PREFIX + "null.value", Type.STRING, "default", Importance.LOW, "body for a null value")
            .define(STREAM_PREFIX + "max.in.flight.bytes", Type.LONG, DEFAULT_MAX_IN_FLIGHT_BYTES, Range.atLeast(1), Importance.LOW,
                    "the window in body bytes; a message larger than it goes alone")
            .define(STREAM_PREFIX + "retry.backoff.initial.ms", Type.LONG, 100L, Range.atLeast(1), Importance.LOW,
                    "first pause before producers are made again after a failure; it doubles up to `retry.backoff.max.ms`")
            .define(STREAM_PREFIX + "retry.backoff.max.ms", Type.LONG, 5_000L, Range.atLeast(1), Importance.LOW, "longest pause between attempts");

    /** Keys under this prefix of the sink namespace go to amqp-client as they are (documented as one row). */
    public static final String SINK_CONNECTION = SINK_PREFIX + "connection.";

    private Settings() {
    }

    private static void plainTable(String name, Object value) {
        if (value == null || !TABLE.matcher(value.toString()).matches()) {
            throw new ConfigException(name, value, "must be a plain table name, optionally schema-qualified");
        }
    }
}
