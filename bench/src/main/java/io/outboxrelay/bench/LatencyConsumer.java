package io.outboxrelay.bench;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.UnaryOperator;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Delivery;
import com.rabbitmq.client.Envelope;

/**
 * The benchmark's independent consumer: keeps every delivery with its arrival time. The benchmark
 * consumes with automatic acknowledgement, so that consuming is never what limits the measurement;
 * the soak acknowledges, so that a broker restart cannot drop a message in transit.
 */
final class LatencyConsumer implements AutoCloseable {

    private final Channel channel;
    private final List<Delivery> deliveries = new ArrayList<>();
    private final List<Long> arrivals = new ArrayList<>();

    private LatencyConsumer(Channel channel) {
        this.channel = channel;
    }

    /** Consumes without acknowledgement, recording each delivery as {@code normalise} turns it. */
    static LatencyConsumer start(Connection connection, String queue, UnaryOperator<Delivery> normalise) throws IOException {
        return start(connection, queue, false, normalise);
    }

    /**
     * @param acknowledge ack each message after recording it, so that a broker restart redelivers what was
     *                    in transit (seen as a duplicate) instead of dropping it with the connection
     * @param normalise   turns a delivery into what the checks read (see {@link Subject#normalise})
     */
    static LatencyConsumer start(Connection connection, String queue, boolean acknowledge, UnaryOperator<Delivery> normalise) throws IOException {
        Channel channel = connection.createChannel();
        if (acknowledge) {
            channel.basicQos(1_000);
        }
        LatencyConsumer consumer = new LatencyConsumer(channel);
        channel.basicConsume(queue, !acknowledge, new DefaultConsumer(channel) {
            @Override
            public void handleDelivery(String tag, Envelope envelope, AMQP.BasicProperties props, byte[] body) throws IOException {
                long at = System.nanoTime();
                consumer.add(normalise.apply(new Delivery(envelope, props, body)), at);
                if (acknowledge) {
                    channel.basicAck(envelope.getDeliveryTag(), false);
                }
            }
        });
        return consumer;
    }

    private synchronized void add(Delivery d, long at) {
        deliveries.add(d);
        arrivals.add(at);
        notifyAll();
    }

    synchronized List<Delivery> deliveries() {
        return new ArrayList<>(deliveries);
    }

    synchronized List<Long> arrivals() {
        return new ArrayList<>(arrivals);
    }

    synchronized int count() {
        return deliveries.size();
    }

    /** Waits until every id has arrived; returns false at the timeout. */
    synchronized boolean awaitIds(Set<String> ids, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        Set<String> missing = new HashSet<>(ids);
        int seen = 0;
        while (true) {
            for (; seen < deliveries.size(); seen++) {
                missing.remove(deliveries.get(seen).getProperties().getMessageId());
            }
            if (missing.isEmpty()) {
                return true;
            }
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return false;
            }
            wait(Math.max(1, left / 1_000_000));
        }
    }

    @Override
    public void close() throws IOException {
        try {
            channel.close();
        }
        catch (com.rabbitmq.client.AlreadyClosedException | java.util.concurrent.TimeoutException ignored) {
            // Already gone with its connection.
        }
    }
}
