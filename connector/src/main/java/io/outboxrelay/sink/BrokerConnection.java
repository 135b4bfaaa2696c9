package io.outboxrelay.sink;

import java.io.IOException;
import java.util.concurrent.TimeoutException;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.ShutdownSignalException;

import io.outboxrelay.config.SinkConfig;

/**
 * The sink's one connection and confirm-mode channel, opened on demand and replaced after a
 * failure (see {@link BrokerConnectionFactory} for why amqp-client's recovery is off).
 */
final class BrokerConnection implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(BrokerConnection.class);

    private final ConnectionFactory factory;
    private final ConfirmTracker tracker;
    private final String connectionName;
    private Connection connection;
    private Channel channel;
    private long generation;
    private volatile String blockedReason;

    BrokerConnection(SinkConfig sink, String connectionName, ConfirmTracker tracker) {
        this.factory = BrokerConnectionFactory.forSink(sink);
        this.tracker = tracker;
        this.connectionName = connectionName;
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
            connection = factory.newConnection(connectionName);
            connection.addBlockedListener(reason -> {
                blockedReason = reason;
                LOG.warn("RabbitMQ blocked the connection ({}); publishing waits until the alarm clears", reason);
            }, () -> {
                blockedReason = null;
                LOG.info("RabbitMQ unblocked the connection");
            });
            LOG.info("Connected to RabbitMQ at {}:{}", factory.getHost(), factory.getPort());
        }
        Channel ch = connection.createChannel();
        ch.confirmSelect();
        long gen = tracker.newGeneration();
        ch.addConfirmListener((tag, multiple) -> tracker.ack(gen, tag, multiple), (tag, multiple) -> tracker.nack(gen, tag, multiple));
        ch.addReturnListener(r -> tracker.returned(gen, r.getProperties().getMessageId(),
                "unroutable: " + r.getReplyCode() + " " + r.getReplyText() + " (exchange '" + r.getExchange() + "', routing key '" + r.getRoutingKey() + "')"));
        ch.addShutdownListener(cause -> tracker.channelLost(gen, describe(cause)));
        channel = ch;
        generation = gen;
        return ch;
    }

    /** Publishes with mandatory=true; the tracker learns the delivery tag first, so even an immediate confirm finds it. */
    void publish(Publication p) throws IOException, TimeoutException {
        Channel ch = channel();
        tracker.published(generation, ch.getNextPublishSeqNo(), p);
        OutgoingMessage m = p.message;
        ch.basicPublish(m.exchange(), m.routingKey(), true, m.properties(), m.body());
    }

    /** Declares a queue named after a static routing key, as Debezium Server's autoCreateRoutingKey does. */
    void declareQueue(String name, boolean durable) throws IOException, TimeoutException {
        channel().queueDeclare(name, durable, false, false, null);
    }

    /** The broker's reason while it blocks publishing (a resource alarm), or null. */
    String blockedReason() {
        return blockedReason;
    }

    /** Drops the channel and connection; the next {@link #channel()} opens fresh ones. */
    void reset() {
        closeQuietly();
        channel = null;
        connection = null;
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
