package io.outboxrelay.sink.amqp;

import java.io.IOException;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.PossibleAuthenticationFailureException;
import com.rabbitmq.client.ShutdownSignalException;

import io.outboxrelay.sink.Transport;
import io.outboxrelay.sink.MessageFate;
import io.outboxrelay.sink.ConfirmTracker;
import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.audit.ConnectionAudit;
import io.outboxrelay.config.SinkConfig;
import io.outboxrelay.credentials.Password;

/**
 * The sink's one connection and confirm-mode channel, opened on demand and replaced after a
 * failure (see {@link AmqpConnectionFactory} for why amqp-client's recovery is off).
 */
public final class AmqpTransport implements Transport {

    private static final Logger LOG = LoggerFactory.getLogger(AmqpTransport.class);
    private static final Pattern MISSING_EXCHANGE = Pattern.compile("NOT_FOUND - no exchange '([^']*)'");
    private static final Pattern TOO_LARGE = Pattern.compile("message size (\\d+) is larger than (?:configured )?max size (\\d+)");

    private final SinkConfig sink;
    private final ConnectionFactory factory;
    private final Set<String> declaredQueues = new HashSet<>();
    /** The broker's max_message_size once a message exceeded it (the broker closes the channel on such a publish); 0 until then. */
    private long brokerMaxMessageSize;
    private final ConfirmTracker tracker;
    private final String connectionName;
    private final Password password;
    private Connection connection;
    private Channel channel;
    private long generation;
    private volatile Connection current;
    private volatile String blockedReason;
    private volatile long unblockedAtNanos = System.nanoTime();
    /** When the publish now being written started; 0 when none is. */
    private volatile long writingSinceNanos;

    public AmqpTransport(SinkConfig sink, String connectionName, ConfirmTracker tracker) {
        this.sink = sink;
        this.factory = AmqpConnectionFactory.forSink(sink);
        this.tracker = tracker;
        this.connectionName = connectionName;
        this.password = sink.password();
    }

    /**
     * The channel in confirm mode, opening the connection and the channel after {@link #reset()}.
     * A channel the broker closed is never replaced here: what was in flight on it must first be
     * abandoned and republished (the sink's recovery), or the new channel's delivery tags would be
     * taken for the old channel's and confirm messages that were dropped.
     */
    Channel channel() throws IOException, TimeoutException {
        if (channel != null) {
            if (!channel.isOpen()) {
                throw new IOException("the channel was closed: " + (channel.getCloseReason() != null ? describe(channel.getCloseReason()) : "unknown reason"));
            }
            return channel;
        }
        if (connection == null || !connection.isOpen()) {
            blockedReason = null;
            try {
                connection = ConnectionAudit.openBroker(factory, connectionName);
            }
            catch (PossibleAuthenticationFailureException e) {
                // Retried with back-off like any lost connection; the line says which settings to fix, and where a rotated one is read.
                throw new IOException("RabbitMQ refused the log-in of " + factory.getUsername() + " (" + e.getMessage()
                        + "): check debezium.sink.rabbitmq.connection.username and debezium.sink.rabbitmq.connection.password"
                        + password.whereToRotate(), e);
            }
            current = connection;
            connection.addBlockedListener(reason -> {
                blockedReason = reason;
                LOG.warn("RabbitMQ blocked the connection ({}); publishing waits until the alarm clears", reason);
            }, () -> {
                unblockedAtNanos = System.nanoTime();
                blockedReason = null;
                LOG.info("RabbitMQ unblocked the connection");
            });
        }
        Channel ch = connection.createChannel();
        ch.confirmSelect();
        long gen = tracker.newGeneration();
        ch.addConfirmListener((tag, multiple) -> tracker.ack(gen, tag, multiple), (tag, multiple) -> tracker.nack(gen, tag, multiple));
        ch.addReturnListener(r -> tracker.returned(gen, r.getProperties().getMessageId(), r.getExchange(), r.getRoutingKey(), r.getBody(),
                "unroutable: " + r.getReplyCode() + " " + r.getReplyText() + " (exchange '" + r.getExchange() + "', routing key '" + r.getRoutingKey() + "')"));
        ch.addShutdownListener(cause -> tracker.channelLost(gen, describe(cause)));
        channel = ch;
        generation = gen;
        return ch;
    }

    @Override
    public void open() throws IOException, TimeoutException {
        channel();
        if (sink.autoCreateRoutingKey() && sink.routingKeySource() == SinkConfig.RoutingKeySource.STATIC && !sink.routingKey().isEmpty()) {
            declareQueue(sink.routingKey(), sink.routingKeyDurable());
        }
    }

    @Override
    public void prepare(MessageFate p) throws IOException, TimeoutException {
        if (sink.autoCreateRoutingKey() && sink.routingKeySource() == SinkConfig.RoutingKeySource.TOPIC && declaredQueues.add(p.message().routingKey())) {
            declareQueue(p.message().routingKey(), sink.routingKeyDurable());
        }
    }

    @Override
    public String knownRefusal(MessageFate p) {
        // Known to be refused: refusing it here spares a channel close and reconnect per oversized event.
        return brokerMaxMessageSize > 0 && p.bytes() > brokerMaxMessageSize ? tooLarge(p.bytes()) : null;
    }

    @Override
    public boolean refusesAfterLaterOnesWent() {
        // A return or a nack comes with the confirm, after the messages published behind it may have been routed.
        return true;
    }

    @Override
    public String refusalAfter(String failure, MessageFate p) {
        Matcher tooLarge = TOO_LARGE.matcher(failure);
        if (tooLarge.find()) {
            brokerMaxMessageSize = Long.parseLong(tooLarge.group(2));
        }
        Matcher missing = MISSING_EXCHANGE.matcher(failure);
        if (missing.find() && missing.group(1).equals(p.message().destination())) {
            return "unroutable: exchange '" + missing.group(1) + "' does not exist";
        }
        return knownRefusal(p);
    }

    private String tooLarge(int size) {
        return "too large: the body has " + size + " bytes, RabbitMQ's max_message_size is " + brokerMaxMessageSize;
    }

    /** Publishes with mandatory=true; the tracker learns the delivery tag first, so even an immediate confirm finds it. */
    @Override
    public boolean publish(MessageFate p) throws IOException, TimeoutException {
        Channel ch = channel();
        tracker.published(generation, ch.getNextPublishSeqNo(), p);
        OutgoingMessage m = p.message();
        writingSinceNanos = System.nanoTime();
        try {
            ch.basicPublish(m.destination(), m.routingKey(), true, m.properties(), m.body());
        }
        finally {
            writingSinceNanos = 0;
        }
        return true;
    }

    /**
     * Aborts the connection when one publish has been stuck in its socket write for longer than
     * {@code limit} while the broker does not say it blocks us: a peer that stopped reading (a
     * stalled network path) would otherwise hold the publishing thread, and the pipeline's lock,
     * until TCP gives up many minutes later. The aborted write fails and the sink recovers as after
     * any lost connection. Safe from any thread.
     */
    @Override
    public boolean abortIfWriteStuck(Duration limit) {
        long since = writingSinceNanos;
        if (since == 0 || blockedReason != null || System.nanoTime() - since < limit.toNanos()) {
            return false;
        }
        LOG.warn("A publish to RabbitMQ has been stuck in the socket for over {} ms (debezium.sink.rabbitmq.ackTimeout); dropping the connection",
                limit.toMillis());
        abort();
        return true;
    }

    /** Closes the connection from any thread, freeing a publish stuck in the socket; the next use reconnects. */
    @Override
    public void abort() {
        Connection c = current;
        if (c != null) {
            try {
                c.abort(1_000);
            }
            catch (RuntimeException e) {
                LOG.debug("Aborting the RabbitMQ connection failed", e);
            }
        }
    }

    /** Declares a queue named after a static routing key, as Debezium Server's autoCreateRoutingKey does. */
    void declareQueue(String name, boolean durable) throws IOException, TimeoutException {
        channel().queueDeclare(name, durable, false, false, null);
    }

    /** The broker's reason while it blocks publishing (a resource alarm), or null. */
    @Override
    public String blockedReason() {
        return blockedReason;
    }

    /** When the broker last lifted a block (or the connection was made). */
    @Override
    public long unblockedAtNanos() {
        return unblockedAtNanos;
    }

    /** Drops the channel and connection; the next {@link #channel()} opens fresh ones. */
    @Override
    public void reset() {
        closeQuietly();
        channel = null;
        connection = null;
        current = null;
        // A block belongs to the connection it was sent on; the next one starts unblocked until told otherwise.
        blockedReason = null;
        unblockedAtNanos = System.nanoTime();
    }

    @Override
    public void close() {
        reset();
    }

    private void closeQuietly() {
        if (connection != null) {
            try {
                connection.abort(2_000);
            }
            catch (RuntimeException e) {
                LOG.debug("Closing the RabbitMQ connection failed", e);
            }
        }
    }

    static String describe(ShutdownSignalException cause) {
        return (cause.isHardError() ? "connection" : "channel") + " closed: " + (cause.getReason() != null ? cause.getReason().toString() : cause.getMessage());
    }
}
