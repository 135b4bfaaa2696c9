package io.outboxrelay.inbox;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HexFormat;
import java.util.OptionalLong;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.function.Consumer;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.rabbitmq.stream.Message;
import com.rabbitmq.stream.MessageHandler;
import com.rabbitmq.stream.OffsetSpecification;
import com.rabbitmq.stream.SubscriptionListener;

/**
 * The inbox for a stream or a super stream (the stream client's {@link Message}). A stream has no
 * acknowledgement: a consumer says where to start, and what it has read stays. So the consumer's
 * position is kept in the database, beside the processed ids and in the same transaction as the
 * effect: for each message, the id row, the handler's effect and "next offset of this stream is
 * offset + 1" commit together. {@link #subscriptionListener(OffsetSpecification)} starts every
 * subscription (each partition of a super stream, each re-subscription after a lost connection)
 * from that stored position, and a message at an offset already settled is skipped by its offset
 * before its id is looked at. Restarts, recoveries and duplicates inside the stream (a producer
 * without de-duplication) all end in one effect per message id.
 *
 * Outcomes: a handler that throws is tried again in place after a back-off (a stream keeps its
 * order; nothing behind the message is processed meanwhile), up to {@code maxAttempts} times; then
 * the message, and a message without an id, is recorded in the rejected table with its reason and
 * body, in the transaction that moves the position past it (a stream has no dead-letter exchange:
 * this table is its place). A database that cannot be used is retried in place, with back-off, for
 * as long as it takes: never skipped, never rejected.
 *
 * Written by hand for the same reason as {@link Inbox}: the stream client tracks offsets on the
 * broker, apart from the effect's transaction, which leaves a window for double or lost effects.
 */
public final class StreamInbox {

    private static final Logger LOG = LoggerFactory.getLogger(StreamInbox.class);

    private final ProcessedIds ids;
    private final Attempts attempts;
    private final Consumer<InboxMessage> afterCommit;
    private final String offsetsTable;
    private final String rejectedTable;
    /**
     * Per stream, an offset below which every message is known to be settled: what this inbox
     * committed or read from the table. A stored position only moves forwards, so a message below
     * it is a duplicate without asking the database; re-reading a stream from its start then costs
     * no connection per message. Never above the stored position, so it can only miss a skip.
     */
    private final ConcurrentMap<String, Long> settledBelow = new ConcurrentHashMap<>();

    private StreamInbox(Builder b) {
        this.ids = b.processedIds();
        this.attempts = b.attempts();
        this.afterCommit = b.afterCommit;
        this.offsetsTable = b.table + "_stream_offsets";
        this.rejectedTable = b.table + "_rejected";
    }

    /** A stream inbox for {@code consumer} (a service's name; each name processes every message once, with its own position). */
    public static Builder forConsumer(String consumer, ConnectionSource connections) {
        return new Builder(consumer, connections);
    }

    /** Creates the processed-id, stream position and rejected tables unless they exist (or create them yourself; see {@link #ddl()}). */
    public void createTablesIfMissing() throws SQLException {
        ids.execute(ddl());
    }

    public String ddl() {
        return ids.ddl() + ";\n"
                + "CREATE TABLE IF NOT EXISTS " + offsetsTable + " (consumer text NOT NULL, stream text NOT NULL, next_offset bigint NOT NULL, "
                + "updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (consumer, stream));\n"
                + "CREATE TABLE IF NOT EXISTS " + rejectedTable + " (consumer text NOT NULL, stream text NOT NULL, stream_offset bigint NOT NULL, "
                + "message_id text, reason text NOT NULL, body bytea, rejected_at timestamptz NOT NULL DEFAULT now(), "
                + "PRIMARY KEY (consumer, stream, stream_offset))";
    }

    /**
     * For the consumer builder: starts each subscription at the stored position of its stream, or at
     * {@code whenNone} for a stream this consumer name has not read yet. If the position cannot be
     * read (the database is down), the subscription starts at the stream's first message: everything
     * already settled is then skipped by its offset, so nothing is missed, at the cost of a re-read.
     */
    public SubscriptionListener subscriptionListener(OffsetSpecification whenNone) {
        return subscription -> {
            String stream = subscription.stream();
            try {
                OptionalLong next = nextOffset(stream);
                subscription.offsetSpecification(next.isPresent() ? OffsetSpecification.offset(next.getAsLong()) : whenNone);
            }
            catch (SQLException e) {
                LOG.warn("Cannot read the position of consumer {} in stream {} from {} ({}); reading the stream from its first message, "
                        + "skipping what was settled", ids.consumer, stream, offsetsTable, e.getMessage());
                subscription.offsetSpecification(OffsetSpecification.first());
            }
        };
    }

    /** The offset this consumer name reads next in {@code stream}, if it has settled any message of it. */
    public OptionalLong nextOffset(String stream) throws SQLException {
        try (Connection c = ids.connections.connect();
                PreparedStatement ps = c.prepareStatement("SELECT next_offset FROM " + offsetsTable + " WHERE consumer = ? AND stream = ?")) {
            ps.setString(1, ids.consumer);
            ps.setString(2, stream);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return OptionalLong.empty();
                }
                settled(stream, rs.getLong(1));
                return OptionalLong.of(rs.getLong(1));
            }
        }
    }

    private void settled(String stream, long next) {
        settledBelow.merge(stream, next, Math::max);
    }

    /**
     * Processes one message and settles it (see the class comment); returns only once it is
     * settled, so it blocks the stream's dispatch while the handler or the database keeps failing.
     * Interrupted, it leaves the message unsettled: the next subscription reads it again.
     */
    public Outcome process(MessageHandler.Context context, Message message, InboxHandler handler) throws InterruptedException {
        String stream = context.stream();
        long offset = context.offset();
        if (offset < settledBelow.getOrDefault(stream, 0L)) {
            return Outcome.DUPLICATE;
        }
        InboxMessage m = of(message);
        String rejection = m.messageId() == null ? "no message id, so a duplicate of it could not be told apart" : null;
        int handlerFailures = 0;
        int databaseFailures = 0;
        while (true) {
            try {
                Outcome outcome = settle(stream, offset, m, message, handler, rejection);
                if (outcome == Outcome.REJECTED) {
                    LOG.error("Message {} at offset {} of stream {} rejected: {}; recorded in {}", m.messageId() == null ? "without an id" : m.messageId(),
                            offset, stream, rejection, rejectedTable);
                }
                else if (outcome == Outcome.PROCESSED) {
                    afterCommit(m);
                }
                return outcome;
            }
            catch (SQLException e) {
                Duration pause = attempts.pause(++databaseFailures);
                LOG.warn("Cannot use the inbox tables {} for message {} at offset {} of stream {} ({}); trying again in {} ms, nothing behind it "
                        + "is processed meanwhile", ids.table, m.messageId(), offset, stream, e.getMessage(), pause.toMillis());
                Thread.sleep(pause.toMillis());
            }
            catch (ProcessedIds.HandlerFailure e) {
                handlerFailures++;
                if (handlerFailures >= attempts.max) {
                    rejection = "the handler failed " + handlerFailures + " times (last: " + e.getCause() + ")";
                    continue;
                }
                Duration pause = attempts.pause(handlerFailures);
                LOG.warn("Handler failed on message {} at offset {} of stream {} (attempt {} of {}: {}); trying again in {} ms", m.messageId(), offset,
                        stream, handlerFailures, attempts.max, e.getCause().toString(), pause.toMillis());
                Thread.sleep(pause.toMillis());
            }
        }
    }

    private void afterCommit(InboxMessage m) {
        try {
            afterCommit.accept(m);
        }
        catch (RuntimeException e) {
            // The position moved with the commit; there is nothing left to withhold.
            LOG.warn("The afterCommit listener failed on message {}: {}", m.messageId(), e.toString());
        }
    }

    /** One transaction: skip a settled offset; else the id row and the effect (or the rejected row), and the position past it. */
    private Outcome settle(String stream, long offset, InboxMessage m, Message message, InboxHandler handler, String rejection)
            throws SQLException, ProcessedIds.HandlerFailure {
        try (Connection c = ids.connections.connect()) {
            c.setAutoCommit(false);
            try {
                Long next = lockedPosition(c, stream);
                if (next != null && offset < next) {
                    c.rollback();
                    settled(stream, next);
                    return Outcome.DUPLICATE;
                }
                Outcome outcome;
                if (rejection != null) {
                    reject(c, stream, offset, m, message, rejection);
                    outcome = Outcome.REJECTED;
                }
                else {
                    outcome = ids.handle(c, m, handler);
                }
                storePosition(c, stream, offset + 1);
                c.commit();
                settled(stream, offset + 1);
                return outcome;
            }
            catch (SQLException | ProcessedIds.HandlerFailure e) {
                ProcessedIds.rollbackQuietly(c);
                throw e;
            }
        }
    }

    private Long lockedPosition(Connection c, String stream) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT next_offset FROM " + offsetsTable + " WHERE consumer = ? AND stream = ? FOR UPDATE")) {
            ps.setString(1, ids.consumer);
            ps.setString(2, stream);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getLong(1) : null;
            }
        }
    }

    private void storePosition(Connection c, String stream, long next) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + offsetsTable + " (consumer, stream, next_offset) VALUES (?, ?, ?) "
                + "ON CONFLICT (consumer, stream) DO UPDATE SET next_offset = excluded.next_offset, updated_at = now()")) {
            ps.setString(1, ids.consumer);
            ps.setString(2, stream);
            ps.setLong(3, next);
            ps.executeUpdate();
        }
    }

    private void reject(Connection c, String stream, long offset, InboxMessage m, Message message, String reason) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + rejectedTable
                + " (consumer, stream, stream_offset, message_id, reason, body) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING")) {
            ps.setString(1, ids.consumer);
            ps.setString(2, stream);
            ps.setLong(3, offset);
            ps.setString(4, m.messageId());
            ps.setString(5, reason);
            ps.setBytes(6, message.getBodyAsBinary());
            ps.executeUpdate();
        }
    }

    private static InboxMessage of(Message message) {
        var p = message.getProperties();
        String id = p == null ? null : text(p.getMessageId());
        return new InboxMessage(id == null || id.isBlank() ? null : id, message.getBodyAsBinary(), p == null ? null : p.getSubject(),
                p == null ? null : p.getContentType(), p == null ? null : text(p.getCorrelationId()), message.getApplicationProperties(), false);
    }

    /** An AMQP 1.0 id (a string, number, UUID or binary) as text. */
    private static String text(Object id) {
        if (id == null) {
            return null;
        }
        return id instanceof byte[] b ? HexFormat.of().formatHex(b) : id.toString();
    }

    /**
     * Deletes processed ids older than {@code age}, {@code batch} rows per transaction; returns how
     * many. Within a stream the stored position already skips what was settled, so an id only has to
     * outlive the duplicates that come as new messages (a producer without de-duplication).
     */
    public long purgeOlderThan(Duration age, int batch) throws SQLException {
        return ids.purgeOlderThan(age, batch);
    }

    public static final class Builder extends InboxBuilder<Builder> {

        private Builder(String consumer, ConnectionSource connections) {
            super(consumer, connections);
        }

        public StreamInbox build() {
            return new StreamInbox(this);
        }
    }
}
