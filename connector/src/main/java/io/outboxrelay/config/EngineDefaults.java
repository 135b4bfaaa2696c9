package io.outboxrelay.config;

import java.util.Locale;
import java.util.Properties;

import io.outboxrelay.offsetstore.PostgresOffsetBackingStore;
import io.outboxrelay.transforms.OutboxEventRouter;
import io.outboxrelay.transforms.OutboxEventRouterConfig;

/**
 * The Debezium engine settings the relay uses unless the configuration says otherwise: what makes
 * a ~8-line file enough, and what an outbox relay needs to be correct (heartbeats so an idle outbox
 * does not pin WAL, offsets flushed ten times a second) and fast (a short poll interval).
 */
final class EngineDefaults {

    static final String ROUTER_CLASS = OutboxEventRouter.class.getName();
    static final String DEBEZIUM_ROUTER_CLASS = "io.debezium.transforms.outbox.EventRouter";
    /**
     * The router's switch for the AMQP headers, which the relay turns on in every outbox router of its chain: the sink
     * publishes from them, and takes a record without {@code amqp.message-id} for a heartbeat (processed, never published).
     */
    static final String ROUTER_AMQP_HEADERS = OutboxEventRouterConfig.AMQP_HEADERS;
    static final String ROUTER_INVALID_BEHAVIOR = OutboxEventRouterConfig.INVALID_BEHAVIOR;
    /** A row the router cannot turn into a message is flagged, and the sink dead-letters it (relay.on-invalid), unless the file says otherwise. */
    static final String ROUTER_INVALID_DEFAULT = OutboxEventRouterConfig.InvalidBehavior.FLAG.value();
    static final String HEARTBEAT_PREFIX = "outbox-relay-heartbeat";
    static final long QUEUE_BYTES = 32L * 1024 * 1024;
    /** Debezium's retries of a retriable error in place (the task restarted inside the engine), which the relay does not allow. */
    static final String RETRIES_KEY = "errors.max.retries";

    private EngineDefaults() {
    }

    static Properties forRelay(String relayName) {
        String id = identifier(relayName);
        Properties p = new Properties();
        p.setProperty("name", relayName);
        p.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
        p.setProperty("database.port", "5432");
        p.setProperty("plugin.name", "pgoutput");
        p.setProperty("topic.prefix", id);
        p.setProperty("slot.name", id);
        p.setProperty("publication.name", id);
        p.setProperty("publication.autocreate.mode", "filtered");
        p.setProperty("table.include.list", "public.outbox_event");
        p.setProperty("snapshot.mode", "no_data");
        // The router ignores updates and deletes; not decoding them at all spares PostgreSQL and the relay.
        p.setProperty("skipped.operations", "u,d,t");
        p.setProperty("tombstones.on.delete", "false");
        p.setProperty("slot.drop.on.stop", "false");
        // A non-transactional logical message moves the slot even when only other tables are written
        // (PostgreSQL 15 sends nothing for them through a filtered publication).
        p.setProperty("heartbeat.interval.ms", "10000");
        p.setProperty("heartbeat.action.query", "SELECT pg_logical_emit_message(false, '" + HEARTBEAT_PREFIX + "', now()::text)");
        p.setProperty("message.prefix.exclude.list", HEARTBEAT_PREFIX);
        // Debezium's queue hands a batch over when it is full or after this interval, and the decoder
        // sleeps this long after a few empty reads of the replication stream: it bounds the latency of
        // an event that is not followed by a full batch. The queue's wait ends in a busy loop for its
        // last millisecond (ChangeEventQueue.poll, 3.6.1), so the engine thread spins about
        // 1/(interval + 1) of the time even when idle: 1 ms cost half a core at rest, 10 ms a tenth.
        p.setProperty("poll.interval.ms", "10");
        // Debezium's queue holds up to max.queue.size (8192) records between the decoder and the sink;
        // counted in records only, 8192 rows of a few MB each would take gigabytes. A byte bound
        // keeps what it holds near 32 MiB whatever the row size (one record always fits, however
        // large); the sizing walks each record's Struct once (see docs/operations.md, "Memory and large rows").
        p.setProperty("max.queue.size.in.bytes", Long.toString(QUEUE_BYTES));
        p.setProperty("offset.storage", PostgresOffsetBackingStore.class.getName());
        // The sink hands a batch on before its confirms arrive, so "after every batch" no longer means
        // "after every confirm round"; ten flushes a second keep what a crash can repeat to the confirm
        // window plus a tenth of a second of events, and with max.batch.size=1 (lowest latency) a
        // flush per batch would be a database commit per event.
        p.setProperty("offset.flush.interval.ms", "100");
        // A flush that cannot reach the database gives up after 5 s, leaving the offset where it was
        // (nothing is lost; the next flush tries again). Waiting longer keeps the replication
        // connection open, and PostgreSQL's shutdown waits for that walsender: a restart then stalls
        // the stream for the whole retry window.
        p.setProperty("offset.storage.postgres.retry.timeout.ms", "5000");
        p.setProperty("offset.flush.timeout.ms", "60000");
        // Debezium waits 10 s before restarting the connector after a retriable error (a database
        // restart, a terminated walsender); the stream stands still all that time.
        p.setProperty("retriable.restart.connector.wait.ms", "1000");
        // No restart in place: on a retriable error (the walsender ended, PostgreSQL restarted) Debezium would
        // restart the task inside the running engine from the last flushed offset, while the sink goes on
        // counting publishing ids and holds the old task's records; the stream would store the events sent
        // again under new ids. Failing the engine instead hands the restart to EngineSupervisor, which builds
        // a new engine and sink from the stored offset (relay.restart.backoff.*), with every start-up check.
        p.setProperty(RETRIES_KEY, "0");
        // Debezium adds __debezium.context.* headers (connector name, logical name, task id, run id) to every record; the sink
        // would publish them as message headers, engine internals no consumer asked for. extended.headers.enabled=true keeps them.
        p.setProperty("extended.headers.enabled", "false");
        return p;
    }

    /** A slot, publication and topic prefix name derived from the relay name: [a-z0-9_], at most 63 characters. */
    static String identifier(String relayName) {
        String id = relayName.toLowerCase(Locale.ROOT).replaceAll("[^a-z0-9_]", "_");
        if (id.isEmpty() || !Character.isLetter(id.charAt(0))) {
            id = "r_" + id;
        }
        return id.length() > 63 ? id.substring(0, 63) : id;
    }
}
