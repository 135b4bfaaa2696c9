package io.outboxrelay.testing;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.DefaultConsumer;
import com.rabbitmq.client.Delivery;
import com.rabbitmq.client.Envelope;
import com.rabbitmq.client.AMQP;

/**
 * An independent AMQP consumer that keeps every delivery of one queue, in arrival order. Tests
 * use it to check what really reached the broker, never what the relay says it sent.
 */
public final class QueueRecorder implements AutoCloseable {

    private final Connection connection;
    private final List<Delivery> deliveries = new ArrayList<>();
    private final List<Long> arrivalNanos = new ArrayList<>();

    private QueueRecorder(Connection connection) {
        this.connection = connection;
    }

    /** Records every delivery of {@code queue} through {@code connection}, which it then owns (closed with it). */
    public static QueueRecorder on(Connection connection, String queue) throws IOException {
        return start(connection, queue);
    }

    static QueueRecorder start(Connection connection, String queue) throws IOException {
        QueueRecorder recorder = new QueueRecorder(connection);
        Channel channel = connection.createChannel();
        channel.basicQos(1000);
        channel.basicConsume(queue, false, new DefaultConsumer(channel) {
            @Override
            public void handleDelivery(String tag, Envelope envelope, AMQP.BasicProperties props, byte[] body) throws IOException {
                recorder.add(new Delivery(envelope, props, body));
                channel.basicAck(envelope.getDeliveryTag(), false);
            }
        });
        return recorder;
    }

    private synchronized void add(Delivery delivery) {
        deliveries.add(delivery);
        arrivalNanos.add(System.nanoTime());
        notifyAll();
    }

    /** A copy of what arrived so far. */
    public synchronized List<Delivery> deliveries() {
        return new ArrayList<>(deliveries);
    }

    /** {@link System#nanoTime()} at each delivery's arrival, in the order of {@link #deliveries()}. */
    public synchronized List<Long> arrivalNanos() {
        return new ArrayList<>(arrivalNanos);
    }

    /**
     * Waits until a delivery with each of {@code messageIds} arrived; fails naming how many are
     * missing once nothing has arrived for {@code stall} (progress, not a wall-clock bound: see
     * {@link Progress}).
     */
    public synchronized List<Delivery> awaitIds(java.util.Set<String> messageIds, Duration stall) throws InterruptedException {
        long start = System.nanoTime();
        java.util.Set<String> missing = new java.util.HashSet<>(messageIds);
        int seen = 0;
        while (true) {
            for (; seen < deliveries.size(); seen++) {
                missing.remove(deliveries.get(seen).getProperties().getMessageId());
            }
            if (missing.isEmpty()) {
                return new ArrayList<>(deliveries);
            }
            long left = stallLeft(start, stall);
            if (left <= 0) {
                throw new AssertionError(missing.size() + " of " + messageIds.size() + " events not delivered, nothing arriving for " + stall.toSeconds()
                        + " s, e.g. " + missing.iterator().next());
            }
            wait(Math.max(1, left / 1_000_000));
        }
    }

    public synchronized int count() {
        return deliveries.size();
    }

    /** Waits until at least {@code count} deliveries arrived; fails once nothing has arrived for {@code stall}. */
    public synchronized List<Delivery> awaitAtLeast(int count, Duration stall) throws InterruptedException {
        long start = System.nanoTime();
        while (deliveries.size() < count) {
            long left = stallLeft(start, stall);
            if (left <= 0) {
                throw new AssertionError("expected at least " + count + " deliveries, got " + deliveries.size() + " and nothing more for " + stall.toSeconds() + " s");
            }
            wait(Math.max(1, left / 1_000_000));
        }
        return new ArrayList<>(deliveries);
    }

    /** Nanoseconds left before {@code stall} has passed since the last arrival, or since the wait began when none came during it. */
    private long stallLeft(long start, Duration stall) {
        long since = Math.max(start, arrivalNanos.isEmpty() ? Long.MIN_VALUE : arrivalNanos.get(arrivalNanos.size() - 1));
        return since + stall.toNanos() - System.nanoTime();
    }

    /** Waits for {@code quiet} without a new delivery, so a test can assert that nothing more arrives. */
    public List<Delivery> awaitQuiet(Duration quiet) throws InterruptedException {
        int before;
        do {
            before = count();
            Thread.sleep(quiet.toMillis());
        } while (count() != before);
        return deliveries();
    }

    @Override
    public void close() throws IOException {
        connection.close();
    }
}
