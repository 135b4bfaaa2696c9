package io.outboxrelay.inbox;

import java.io.IOException;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.function.Consumer;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Delivery;
import com.rabbitmq.client.LongString;

/**
 * The consumer's half of exactly-once, for messages from a queue (amqp-client's {@link Delivery};
 * {@link StreamInbox} is the same for a stream). For each delivered message it records the message
 * id for this consumer and runs the handler in one transaction, commits, and only then
 * acknowledges; a message whose id is already recorded is acknowledged without running the
 * handler. So a duplicate (after a relay crash, a redelivery after a consumer crash between its
 * commit and its ack) has no second effect, and an effect is never acknowledged before it is
 * durable. Per consumer name: two services sharing a database each process every message once.
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

    private final ProcessedIds ids;
    private final Attempts attempts;
    private final Consumer<InboxMessage> afterCommit;

    private Inbox(Builder b) {
        this.ids = b.processedIds();
        this.attempts = b.attempts();
        this.afterCommit = b.afterCommit;
    }

    /** An inbox for {@code consumer} (a service's name; each name processes every message once). */
    public static Builder forConsumer(String consumer, ConnectionSource connections) {
        return new Builder(consumer, connections);
    }

    /** Creates the processed-id table unless it exists (or create it yourself; see {@link #ddl()}). */
    public void createTableIfMissing() throws SQLException {
        ids.execute(ddl());
    }

    public String ddl() {
        return ids.ddl();
    }

    /** Processes one delivery from {@code channel} (consumed with manual acknowledgement) and settles it; see the class comment. */
    public Outcome process(Channel channel, Delivery delivery, InboxHandler handler) throws IOException, InterruptedException {
        long tag = delivery.getEnvelope().getDeliveryTag();
        AMQP.BasicProperties props = delivery.getProperties();
        String id = props == null ? null : props.getMessageId();
        if (id == null || id.isBlank()) {
            LOG.error("Message {} on {} has no message-id, so a duplicate of it could not be told apart: rejected (to the queue's dead-letter exchange, "
                    + "if it has one)", tag, delivery.getEnvelope().getRoutingKey());
            channel.basicReject(tag, false);
            return Outcome.REJECTED;
        }
        // Past the id check, so the properties are there.
        InboxMessage message = new InboxMessage(id, delivery.getBody(), props.getType(), props.getContentType(), props.getCorrelationId(),
                headers(props), delivery.getEnvelope().isRedeliver());
        Outcome outcome;
        try (Connection c = ids.connections.connect()) {
            c.setAutoCommit(false);
            try {
                outcome = ids.handle(c, message, handler);
                if (outcome == Outcome.DUPLICATE) {
                    c.rollback();
                }
                else {
                    c.commit();
                }
            }
            catch (SQLException | ProcessedIds.HandlerFailure e) {
                ProcessedIds.rollbackQuietly(c);
                throw e;
            }
        }
        catch (SQLException e) {
            // The database, not the message: requeue, whatever the count, and never acknowledge.
            Duration pause = attempts.pause(1);
            LOG.warn("Cannot use the inbox table {} for message {} ({}); requeued in {} ms", ids.table, id, e.getMessage(), pause.toMillis());
            Thread.sleep(pause.toMillis());
            channel.basicNack(tag, false, true);
            return Outcome.REQUEUED;
        }
        catch (ProcessedIds.HandlerFailure e) {
            int failed = attempts.failed(id);
            if (failed >= attempts.max) {
                LOG.error("Handler failed on message {} {} times (last: {}); rejected (to the queue's dead-letter exchange, if it has one)", id, failed,
                        e.getCause().toString());
                attempts.forget(id);
                channel.basicReject(tag, false);
                return Outcome.REJECTED;
            }
            Duration pause = attempts.pause(failed);
            LOG.warn("Handler failed on message {} (attempt {} of {}: {}); requeued in {} ms", id, failed, attempts.max, e.getCause().toString(),
                    pause.toMillis());
            Thread.sleep(pause.toMillis());
            channel.basicNack(tag, false, true);
            return Outcome.REQUEUED;
        }
        if (outcome == Outcome.PROCESSED) {
            attempts.forget(id);
            afterCommit.accept(message);
        }
        // After the commit: if this ack is lost (the consumer dies now), the redelivery finds the id and is skipped.
        channel.basicAck(tag, false);
        return outcome;
    }

    /** AMQP headers with their text values as strings (amqp-client hands them over as {@link LongString}). */
    private static Map<String, Object> headers(AMQP.BasicProperties props) {
        if (props.getHeaders() == null) {
            return Map.of();
        }
        Map<String, Object> headers = new HashMap<>();
        props.getHeaders().forEach((k, v) -> headers.put(k, v instanceof LongString s ? s.toString() : v));
        return headers;
    }

    /**
     * Deletes processed ids older than {@code age}, {@code batch} rows per transaction; returns how
     * many. The trade-off: a duplicate that arrives after its id was deleted is processed again, so
     * {@code age} must exceed the longest a duplicate can take (outbox-relay's come within seconds of a
     * crash or failover; a dead letter re-driven days later comes with its original id too).
     */
    public long purgeOlderThan(Duration age, int batch) throws SQLException {
        return ids.purgeOlderThan(age, batch);
    }

    public static final class Builder extends InboxBuilder<Builder> {

        private Builder(String consumer, ConnectionSource connections) {
            super(consumer, connections);
        }

        public Inbox build() {
            return new Inbox(this);
        }
    }
}
