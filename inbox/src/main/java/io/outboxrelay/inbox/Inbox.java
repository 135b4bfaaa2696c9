package io.outboxrelay.inbox;

import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.Consumer;
import java.util.regex.Pattern;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Delivery;

/**
 * The consumer's half of exactly-once. For each delivered message it records the message id for
 * this consumer and runs the handler in one transaction, commits, and only then acknowledges; a
 * message whose id is already recorded is acknowledged without running the handler. So a duplicate
 * (after a relay crash, a redelivery after a consumer crash between its commit and its ack) has no
 * second effect, and an effect is never acknowledged before it is durable.
 *
 * Two deliveries of one id at once (a redelivery to a second consumer while the first is still in
 * its transaction) are serialised by the primary key: the second insert waits for the first
 * transaction and then finds the row. Per consumer name: two services sharing a database each
 * process every message once.
 *
 * Outcomes: a message without an id is rejected without requeue (to the queue's dead-letter
 * exchange, if it has one); a handler that throws is requeued after a back-off, up to
 * {@code maxAttempts} times, then rejected; a database that cannot be used requeues after a back-off,
 * never rejects, and never acknowledges. Nothing is acknowledged silently.
 *
 * Written by hand because no library does this for plain amqp-client consumers on JDBC: Spring's
 * and others' idempotent receivers keep ids in a separate store, outside the effect's transaction.
 */
public final class Inbox {

    private static final Logger LOG = LoggerFactory.getLogger(Inbox.class);
    private static final Pattern TABLE = Pattern.compile("([A-Za-z_][A-Za-z0-9_$]{0,62}\\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}");
    /** Failed attempts are remembered per id for this many ids at most; an evicted id starts counting again. */
    private static final int REMEMBERED_FAILURES = 10_000;

    private final ConnectionSource connections;
    private final String consumer;
    private final String table;
    private final int maxAttempts;
    private final Duration backoff;
    private final Duration maxBackoff;
    private final Consumer<InboxMessage> afterCommit;
    private final Map<String, Integer> failures = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Integer> eldest) {
            return size() > REMEMBERED_FAILURES;
        }
    };

    private Inbox(Builder b) {
        this.connections = b.connections;
        this.consumer = b.consumer;
        this.table = b.table;
        this.maxAttempts = b.maxAttempts;
        this.backoff = b.backoff;
        this.maxBackoff = b.maxBackoff;
        this.afterCommit = b.afterCommit;
    }

    /** An inbox for {@code consumer} (a service's name; each name processes every message once). */
    public static Builder forConsumer(String consumer, ConnectionSource connections) {
        return new Builder(consumer, connections);
    }

    /** Creates the processed-id table unless it exists (or create it yourself; see {@link #ddl()}). */
    public void createTableIfMissing() throws SQLException {
        try (Connection c = connections.connect(); Statement s = c.createStatement()) {
            for (String statement : ddl().split(";\n")) {
                s.execute(statement);
            }
        }
    }

    public String ddl() {
        String bare = table.substring(table.lastIndexOf('.') + 1);
        return "CREATE TABLE IF NOT EXISTS " + table + " (consumer text NOT NULL, message_id text NOT NULL, "
                + "processed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (consumer, message_id));\n"
                + "CREATE INDEX IF NOT EXISTS " + bare + "_processed_at ON " + table + " (processed_at)";
    }

    /** Processes one delivery from {@code channel} (consumed with manual acknowledgement) and settles it; see the class comment. */
    public Outcome process(Channel channel, Delivery delivery, InboxHandler handler) throws IOException, InterruptedException {
        long tag = delivery.getEnvelope().getDeliveryTag();
        String id = delivery.getProperties() == null ? null : delivery.getProperties().getMessageId();
        if (id == null || id.isBlank()) {
            LOG.error("Message {} on {} has no message-id, so a duplicate of it could not be told apart: rejected (to the queue's dead-letter exchange, "
                    + "if it has one)", tag, delivery.getEnvelope().getRoutingKey());
            channel.basicReject(tag, false);
            return Outcome.REJECTED;
        }
        InboxMessage message = new InboxMessage(id, delivery.getBody(), delivery.getProperties(), delivery.getEnvelope().isRedeliver());
        Outcome outcome;
        try (Connection c = connections.connect()) {
            outcome = inTransaction(c, message, handler);
        }
        catch (SQLException e) {
            // The database, not the message: requeue, whatever the count, and never acknowledge.
            Duration pause = pause(1);
            LOG.warn("Cannot use the inbox table {} for message {} ({}); requeued in {} ms", table, id, e.getMessage(), pause.toMillis());
            Thread.sleep(pause.toMillis());
            channel.basicNack(tag, false, true);
            return Outcome.REQUEUED;
        }
        catch (HandlerFailure e) {
            int attempts = recordFailure(id);
            if (attempts >= maxAttempts) {
                LOG.error("Handler failed on message {} {} times (last: {}); rejected (to the queue's dead-letter exchange, if it has one)", id, attempts,
                        e.getCause().toString());
                forget(id);
                channel.basicReject(tag, false);
                return Outcome.REJECTED;
            }
            Duration pause = pause(attempts);
            LOG.warn("Handler failed on message {} (attempt {} of {}: {}); requeued in {} ms", id, attempts, maxAttempts, e.getCause().toString(),
                    pause.toMillis());
            Thread.sleep(pause.toMillis());
            channel.basicNack(tag, false, true);
            return Outcome.REQUEUED;
        }
        if (outcome == Outcome.PROCESSED) {
            forget(id);
            afterCommit.accept(message);
        }
        // After the commit: if this ack is lost (the consumer dies now), the redelivery finds the id and is skipped.
        channel.basicAck(tag, false);
        return outcome;
    }

    private Outcome inTransaction(Connection c, InboxMessage message, InboxHandler handler) throws SQLException, HandlerFailure {
        c.setAutoCommit(false);
        try {
            int inserted;
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + table + " (consumer, message_id) VALUES (?, ?) ON CONFLICT DO NOTHING")) {
                ps.setString(1, consumer);
                ps.setString(2, message.messageId());
                inserted = ps.executeUpdate();
            }
            if (inserted == 0) {
                c.rollback();
                return Outcome.DUPLICATE;
            }
            try {
                handler.handle(c, message);
            }
            catch (Exception e) {
                c.rollback();
                throw new HandlerFailure(e);
            }
            c.commit();
            return Outcome.PROCESSED;
        }
        catch (SQLException e) {
            try {
                c.rollback();
            }
            catch (SQLException ignored) {
                // The connection is likely gone; the transaction is rolled back with it.
            }
            throw e;
        }
    }

    /**
     * Deletes processed ids older than {@code age}, {@code batch} rows per transaction; returns how
     * many. The trade-off: a duplicate that arrives after its id was deleted is processed again, so
     * {@code age} must exceed the longest a duplicate can take (outbox-relay's come within seconds of a
     * crash or failover; a dead letter re-driven days later comes with its original id too).
     */
    public long purgeOlderThan(Duration age, int batch) throws SQLException {
        long total = 0;
        try (Connection c = connections.connect();
                PreparedStatement ps = c.prepareStatement("DELETE FROM " + table + " WHERE ctid IN (SELECT ctid FROM " + table
                        + " WHERE consumer = ? AND processed_at < now() - ? * interval '1 millisecond' LIMIT ?)")) {
            c.setAutoCommit(true);
            int deleted;
            do {
                ps.setString(1, consumer);
                ps.setLong(2, age.toMillis());
                ps.setInt(3, batch);
                deleted = ps.executeUpdate();
                total += deleted;
            } while (deleted == batch);
        }
        return total;
    }

    private synchronized int recordFailure(String id) {
        return failures.merge(id, 1, Integer::sum);
    }

    private synchronized void forget(String id) {
        failures.remove(id);
    }

    private Duration pause(int attempt) {
        Duration p = backoff.multipliedBy(1L << Math.min(attempt - 1, 20));
        return p.compareTo(maxBackoff) > 0 ? maxBackoff : p;
    }

    /** A handler's own failure, told apart from the inbox's SQL. */
    private static final class HandlerFailure extends Exception {
        HandlerFailure(Exception cause) {
            super(cause);
        }
    }

    public static final class Builder {
        private final String consumer;
        private final ConnectionSource connections;
        private String table = "inbox_processed";
        private int maxAttempts = 5;
        private Duration backoff = Duration.ofMillis(200);
        private Duration maxBackoff = Duration.ofSeconds(10);
        private Consumer<InboxMessage> afterCommit = m -> { };

        private Builder(String consumer, ConnectionSource connections) {
            if (consumer == null || consumer.isBlank()) {
                throw new IllegalArgumentException("the consumer name is required: each name processes every message once");
            }
            this.consumer = consumer;
            this.connections = Objects.requireNonNull(connections, "connections");
        }

        /** The processed-id table, optionally schema-qualified (default {@code inbox_processed}). */
        public Builder table(String name) {
            if (!TABLE.matcher(name).matches()) {
                throw new IllegalArgumentException("table must be a plain table name, optionally schema-qualified: " + name);
            }
            this.table = name;
            return this;
        }

        /** How many times a failing handler is tried before the message is rejected (default 5). */
        public Builder maxAttempts(int attempts) {
            if (attempts < 1) {
                throw new IllegalArgumentException("maxAttempts must be at least 1");
            }
            this.maxAttempts = attempts;
            return this;
        }

        /** The first pause before a requeue, doubling per failed attempt up to {@code max} (default 200 ms to 10 s). */
        public Builder backoff(Duration first, Duration max) {
            this.backoff = first;
            this.maxBackoff = max;
            return this;
        }

        /**
         * Called after a message's transaction committed and before its ack (for metrics or tracing).
         * If it throws, the message is not acknowledged; its redelivery is then recognised as a duplicate.
         */
        public Builder afterCommit(Consumer<InboxMessage> listener) {
            this.afterCommit = Objects.requireNonNull(listener);
            return this;
        }

        public Inbox build() {
            return new Inbox(this);
        }
    }
}
