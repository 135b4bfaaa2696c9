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
    /** Set instead of the channel when it reads a stream. */
    private com.rabbitmq.stream.Consumer streamConsumer;
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

    /**
     * Reads {@code stream} from its first message, each one as a delivery: message id, the
     * application properties as headers, the body; what Debezium Server's stream sink and the
     * relay's both put in a stream.
     */
    static LatencyConsumer startStream(com.rabbitmq.stream.Environment env, String stream, UnaryOperator<Delivery> normalise) {
        LatencyConsumer consumer = new LatencyConsumer(null);
        consumer.streamConsumer = env.consumerBuilder().stream(stream).offset(com.rabbitmq.stream.OffsetSpecification.first())
                .messageHandler((context, m) -> {
                    long at = System.nanoTime();
                    java.util.Map<String, Object> headers = new java.util.HashMap<>();
                    if (m.getApplicationProperties() != null) {
                        m.getApplicationProperties().forEach((k, v) -> headers.put(k, v == null ? null : String.valueOf(v)));
                    }
                    AMQP.BasicProperties props = new AMQP.BasicProperties.Builder()
                            .messageId(m.getProperties() == null ? null : m.getProperties().getMessageIdAsString()).headers(headers).build();
                    consumer.add(normalise.apply(new Delivery(new Envelope(context.offset(), false, "", stream), props, m.getBodyAsBinary())), at);
                }).build();
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
        if (streamConsumer != null) {
            streamConsumer.close();
            return;
        }
        try {
            channel.close();
        }
        catch (com.rabbitmq.client.AlreadyClosedException | java.util.concurrent.TimeoutException ignored) {
            // Already gone with its connection.
        }
    }
}
