package io.outboxrelay.sink.stream;

import java.io.IOException;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.rabbitmq.stream.ConfirmationStatus;
import com.rabbitmq.stream.Constants;
import com.rabbitmq.stream.Environment;
import com.rabbitmq.stream.Message;
import com.rabbitmq.stream.Producer;
import com.rabbitmq.stream.ProducerBuilder;
import com.rabbitmq.stream.StreamException;

import io.outboxrelay.sink.Transport;
import io.outboxrelay.sink.MessageFate;
import io.outboxrelay.sink.ConfirmTracker;
import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.config.StreamSinkConfig;

/**
 * The stream sink's transport: one stream-client environment and a named producer per stream (or
 * super stream), made on first use and replaced after a failure. Every message carries the
 * publishing id {@link PublishingIds} gave its event, so what is published again is dropped by the
 * broker's de-duplication.
 * <p>
 * stream-client's own re-publishing after a recovery is off ({@code retryOnRecovery(false)}): the
 * pipeline owns what is unconfirmed and publishes it again, with the same ids, through producers
 * made afresh. A producer that failed a message is closed at once, from the client's own callback
 * ({@link #confirmed}): when the client recovers a connection it fails what was on the old one and
 * then goes on sending what it still held in its batch, on the new one. Those messages carry
 * higher ids than the failed ones, and once the broker stored them it would drop the failed ones,
 * published again, as duplicates: whatever of them never reached the broker would be lost.
 */
public final class StreamTransport implements Transport {

    private static final Logger LOG = LoggerFactory.getLogger(StreamTransport.class);
    /** How long a stream that could not be created is taken as missing before creating it is tried again. */
    private static final Duration RETRY_CREATE = Duration.ofSeconds(10);
    /**
     * How long the environment may go on answering "not available" (its locator connection lost and not
     * recovered) before it is closed and a new one opened. Seen on RabbitMQ 4.0 after a cut connection:
     * the client's locator recovery gave "Locator not available", then "Could not execute operation after
     * 3 attempts", for minutes, while a new connection to the same broker would have been taken at once.
     */
    private static final Duration STALE_ENVIRONMENT = Duration.ofSeconds(30);

    private final StreamSinkConfig config;
    private final ConfirmTracker tracker;
    private final String connectionName;
    /** The highest id the stored offset knew: a stream holding more of this producer's ids is worth a line. */
    private final long storedWatermark;
    /** The highest publishing id of this producer the broker held when its producers were made. */
    private volatile long brokerLastId = -1;
    private final Map<String, Producer> producers = new HashMap<>();
    /** The producers made since the last reset, shared with the client's threads: the first failure among them closes them all. */
    private volatile Sending sending = new Sending();
    /** Closes producers that fail on the client's network thread, which a close would wait on (see {@link #confirmed}). */
    private final ExecutorService closer = Executors.newSingleThreadExecutor(r -> {
        Thread t = new Thread(r, "outbox-relay-stream-producer-closer");
        t.setDaemon(true);
        return t;
    });
    private final Map<String, Missing> missing = new HashMap<>();
    private Environment environment;
    private volatile Environment current;
    private long generation = -1;
    /** When the environment began answering "not available" without a break; 0 while it answers. */
    private long unavailableSinceNanos;
    private long nextTag;
    private final long createdAtNanos = System.nanoTime();

    private record Missing(String reason, long untilNanos) {
    }

    private static final class Sending {
        final List<Producer> producers = new CopyOnWriteArrayList<>();
        final AtomicBoolean failed = new AtomicBoolean();
    }

    public StreamTransport(StreamSinkConfig config, String connectionName, ConfirmTracker tracker, long storedWatermark) {
        this.config = config;
        this.tracker = tracker;
        this.connectionName = connectionName;
        this.storedWatermark = storedWatermark;
    }

    @Override
    public void open() throws IOException {
        environment();
        if (config.stream() != null) {
            try {
                producer(config.stream());
            }
            catch (StreamUnavailable e) {
                // Each event will be refused with this reason, by the relay.on-unroutable policy; the line says it at once. The stream
                // holds no id of anyone's, so a fresh numbering begins at 1.
                LOG.error("{}", e.getMessage());
                brokerLastId = Math.max(brokerLastId, 0);
            }
        }
    }

    @Override
    public void prepare(MessageFate p) {
        // Streams are made when their producer is (see producer()).
    }

    @Override
    public boolean publish(MessageFate p) throws IOException {
        String stream = p.message().destination();
        Producer producer;
        try {
            producer = producer(stream);
        }
        catch (StreamUnavailable e) {
            p.refuse(e.getMessage());
            return false;
        }
        if (generation < 0) {
            generation = tracker.newGeneration();
            nextTag = 0;
        }
        long gen = generation;
        Sending on = sending;
        if (on.failed.get()) {
            // Its producers are closed (or being closed): the pipeline first takes back all that is unconfirmed.
            throw new IOException("publishing to stream '" + stream + "' stopped: a message of this connection failed");
        }
        long tag = ++nextTag;
        Message message = StreamMessages.of(producer.messageBuilder().publishingId(p.publishingId()), p.message());
        tracker.published(gen, tag, p);
        try {
            producer.send(message, status -> confirmed(gen, tag, status, on));
        }
        catch (IllegalArgumentException e) {
            // stream-client refuses, before sending, a message larger than the connection's frame.
            tracker.withdrawn(gen, tag);
            String size = e.getMessage() == null ? "" : e.getMessage().replaceAll("\\D+", " ").trim();
            p.refuse("too large: the message has " + (size.isEmpty() ? "more" : size) + " bytes encoded, more than the stream connection's frame "
                    + "size takes (the broker's stream.frame_max, or " + StreamSinkConfig.PREFIX + "requestedMaxFrameSize)");
            return false;
        }
        catch (StreamException e) {
            throw new IOException("publishing to stream '" + stream + "' failed: " + e.getMessage(), e);
        }
        return true;
    }

    private void confirmed(long gen, long tag, ConfirmationStatus status, Sending on) {
        if (status.isConfirmed()) {
            tracker.ack(gen, tag, false);
            return;
        }
        if (on.failed.compareAndSet(false, true)) {
            stopSending(on, status.getCode());
        }
        tracker.channelLost(gen, "the stream producer did not confirm a message: " + describe(status.getCode()));
    }

    /**
     * Closes every producer of the failed generation before the client can send anything more on
     * them. The codes the client itself gives (a confirm time-out, which is also how a recovered
     * connection fails what was on the old one, a producer not available, closed or full) arrive on
     * the client's recovery or timer thread or on the relay's own, none of which reads the broker's
     * replies: closed there and then, so the recovery's next step, sending what the batch held,
     * finds the batch stopped. A code from the broker arrives on the network thread, whose reply a
     * close of an open producer would wait for: closed from another thread.
     */
    private void stopSending(Sending on, short code) {
        Runnable close = () -> on.producers.forEach(StreamTransport::closeQuietly);
        boolean clientCode = code == Constants.CODE_PUBLISH_CONFIRM_TIMEOUT || code == Constants.CODE_PRODUCER_NOT_AVAILABLE
                || code == Constants.CODE_PRODUCER_CLOSED || code == Constants.CODE_MESSAGE_ENQUEUEING_FAILED;
        if (clientCode) {
            close.run();
        }
        else {
            try {
                closer.execute(close);
            }
            catch (RejectedExecutionException e) {
                // The sink is closing, and closes every producer itself.
            }
        }
    }

    private static void closeQuietly(Producer producer) {
        try {
            producer.close();
        }
        catch (RuntimeException e) {
            LOG.debug("Closing a stream producer failed", e);
        }
    }

    @Override
    public String knownRefusal(MessageFate p) {
        Missing m = missing.get(p.message().destination());
        return m != null && System.nanoTime() - m.untilNanos < 0 ? m.reason : null;
    }

    @Override
    public boolean refusesAfterLaterOnesWent() {
        // A stream refuses nothing per message after publishing: a failure fails the generation, and a missing stream everything sent to it.
        return false;
    }

    @Override
    public String refusalAfter(String failure, MessageFate p) {
        return knownRefusal(p);
    }

    @Override
    public String blockedReason() {
        return null;
    }

    @Override
    public long unblockedAtNanos() {
        return createdAtNanos;
    }

    @Override
    public boolean abortIfWriteStuck(Duration limit) {
        // Sending is asynchronous in stream-client (netty): no publish is ever stuck in a socket write here.
        return false;
    }

    @Override
    public void abort() {
        Environment e = current;
        // Forgotten first: the next use opens a fresh environment rather than the closed one.
        current = null;
        if (e != null) {
            try {
                e.close();
            }
            catch (RuntimeException ex) {
                LOG.debug("Closing the stream environment failed", ex);
            }
        }
    }

    @Override
    public void reset() {
        producers.values().forEach(StreamTransport::closeQuietly);
        producers.clear();
        sending = new Sending();
        generation = -1;
    }

    @Override
    public void close() {
        reset();
        closer.shutdown();
        abort();
        environment = null;
        current = null;
    }

    private Environment environment() throws IOException {
        Environment open = current;
        if (open != null && open == environment) {
            return open;
        }
        try {
            environment = StreamEnvironments.open(config, connectionName);
        }
        catch (StreamException | IllegalStateException e) {
            throw new IOException(StreamEnvironments.explain(config, e), e);
        }
        current = environment;
        return environment;
    }

    /** The stream's producer, creating the stream when it is missing, as Debezium Server's sink does. */
    private Producer producer(String stream) throws IOException {
        Producer producer = producers.get(stream);
        if (producer != null) {
            return producer;
        }
        Environment env = environment();
        Missing m = missing.get(stream);
        if (m != null && System.nanoTime() - m.untilNanos < 0) {
            throw new StreamUnavailable(m.reason);
        }
        try {
            StreamEnvironments.ensure(env, config, stream);
            missing.remove(stream);
            unavailableSinceNanos = 0;
        }
        catch (StreamException e) {
            if (!refused(e)) {
                // Not a refusal: the stream is there but not available yet (its leader is starting after a broker restart), or the
                // broker is unreachable. Retried with back-off like any failure, never dead-lettered.
                abortIfStale(e);
                throw new IOException("stream '" + stream + "' is not available (" + (e.getCode() > 0 ? describe(e.getCode()) : e.getMessage()) + ")", e);
            }
            String reason = "unroutable: " + (config.superStream() ? "super stream '" : "stream '") + stream + "' does not exist and cannot be created ("
                    + e.getMessage() + "): create it, or grant the user " + config.username() + " the configure permission on it";
            missing.put(stream, new Missing(reason, System.nanoTime() + RETRY_CREATE.toNanos()));
            throw new StreamUnavailable(reason);
        }
        // Before the producer is made: two producers of one name on one stream are one too many for the broker.
        warnIfAhead(env, stream);
        try {
            ProducerBuilder b = StreamEnvironments.destination(env.producerBuilder().name(config.producerName()), config, stream);
            if (config.filterValue() != null && !config.filterValue().isBlank()) {
                String key = config.filterValue();
                b = b.filterValue(msg -> msg.getApplicationProperties() == null || msg.getApplicationProperties().get(key) == null
                        ? null : String.valueOf(msg.getApplicationProperties().get(key)));
            }
            producer = b.confirmTimeout(config.delivery().ackTimeout())
                    .enqueueTimeout(config.enqueueTimeout())
                    .batchSize(config.batchSize())
                    .batchPublishingDelay(config.batchPublishingDelay())
                    .maxUnconfirmedMessages(config.delivery().maxInFlight())
                    .retryOnRecovery(false)
                    .build();
        }
        catch (StreamException | IllegalArgumentException | IllegalStateException e) {
            throw new IOException("cannot make the producer '" + config.producerName() + "' for stream '" + stream + "': " + e.getMessage(), e);
        }
        producers.put(stream, producer);
        sending.producers.add(producer);
        return producer;
    }

    /**
     * Opens a new environment at the next attempt once this one has answered "not available" for
     * {@link #STALE_ENVIRONMENT}. What was unconfirmed is published again through the new one's
     * producers, under the same name and publishing ids, so the broker keeps each message once.
     */
    private void abortIfStale(StreamException e) {
        long now = System.nanoTime();
        if (unavailableSinceNanos == 0) {
            unavailableSinceNanos = now;
        }
        else if (now - unavailableSinceNanos > STALE_ENVIRONMENT.toNanos()) {
            LOG.warn("The stream environment has answered 'not available' for {} s ({}); opening a new one", STALE_ENVIRONMENT.toSeconds(),
                    e.getMessage());
            unavailableSinceNanos = 0;
            // The failure thrown next has the pipeline reset this transport (its producers) and publish again after the back-off.
            abort();
        }
    }

    /** Whether the broker refused to make the stream (permissions, arguments it rejects), as opposed to not answering well just now. */
    private static boolean refused(StreamException e) {
        short code = e.getCode();
        return code == Constants.RESPONSE_CODE_ACCESS_REFUSED || code == Constants.RESPONSE_CODE_PRECONDITION_FAILED
                || code == Constants.RESPONSE_CODE_VIRTUAL_HOST_ACCESS_FAILURE;
    }

    /**
     * Reads the broker's last publishing id of this producer. Ids beyond the stored count are usual
     * after a crash (what was confirmed after the offset was stored is sent again and dropped as a
     * duplicate); the line says so, and says what it would mean if another relay published with the
     * same producer name.
     */
    private void warnIfAhead(Environment env, String stream) {
        long ahead = 0;
        boolean read = true;
        try {
            ahead = StreamEnvironments.lastPublishingId(env, config, config.producerName(), stream);
        }
        catch (StreamException | IllegalStateException e) {
            read = false;
            LOG.debug("Cannot read the last publishing id of {} on {}", config.producerName(), stream, e);
        }
        if (read) {
            // Only a complete answer counts: a fresh numbering begins above it (RabbitMqChangeConsumer.connect).
            brokerLastId = Math.max(brokerLastId, ahead);
        }
        if (storedWatermark >= 0 && ahead > storedWatermark) {
            LOG.info("Stream '{}' holds messages of producer '{}' up to publishing id {}, beyond the stored offset's count {}: the events between "
                    + "are sent again with the ids they had and dropped by the broker as duplicates. Each relay needs a producer name of its own "
                    + "({}producer.name)", stream, config.producerName(), ahead, storedWatermark, StreamSinkConfig.PREFIX);
        }
    }

    /** The broker's last publishing id of the producer on the streams made so far; -1 until one was read completely. */
    @Override
    public long lastPublishingId() {
        return brokerLastId;
    }

    static String describe(short code) {
        return switch (code) {
            case Constants.CODE_PUBLISH_CONFIRM_TIMEOUT -> "confirm time-out (" + StreamSinkConfig.PREFIX + "producer.confirmTimeout)";
            case Constants.CODE_PRODUCER_NOT_AVAILABLE -> "the producer is not available (the connection to the stream is being recovered)";
            case Constants.CODE_PRODUCER_CLOSED -> "the producer was closed";
            case Constants.CODE_MESSAGE_ENQUEUEING_FAILED -> "enqueueing failed (" + StreamSinkConfig.PREFIX + "producer.enqueueTimeout)";
            case Constants.CODE_NO_ROUTE_FOUND -> "no partition of the super stream matched the routing key";
            case Constants.RESPONSE_CODE_STREAM_DOES_NOT_EXIST -> "the stream does not exist (deleted?)";
            case Constants.RESPONSE_CODE_PUBLISHER_DOES_NOT_EXIST -> "the broker no longer knows the producer";
            case Constants.RESPONSE_CODE_STREAM_NOT_AVAILABLE -> "the stream is not available (its leader is moving)";
            case Constants.RESPONSE_CODE_ACCESS_REFUSED -> "access refused: the user may not write to the stream";
            default -> "code " + code;
        };
    }

    /** A stream that is missing and cannot be made: its events are refused, by relay.on-unroutable. */
    private static final class StreamUnavailable extends RuntimeException {
        StreamUnavailable(String reason) {
            super(reason, null, false, false);
        }
    }
}
