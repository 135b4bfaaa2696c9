package io.outboxrelay.sink;

import java.io.IOException;
import java.time.Duration;
import java.util.concurrent.TimeoutException;

/**
 * The broker as the {@link PublishPipeline} sees it: exchanges over AMQP ({@link io.outboxrelay.sink.amqp.AmqpTransport})
 * or streams ({@link io.outboxrelay.sink.stream.StreamTransport}). A transport publishes and reports each outcome to the
 * {@link ConfirmTracker} under the generation it got from it; the pipeline owns everything else
 * (the window, the order of marking, rewinding, parking, back-off).
 */
public interface Transport extends AutoCloseable {

    /** Connects now, so that a wrong address fails at start rather than at the first event. */
    void open() throws IOException, TimeoutException;

    /** What must exist before {@code p} is published (a queue named after its routing key, a stream). */
    void prepare(MessageFate p) throws IOException, TimeoutException;

    /**
     * Publishes {@code p}, registering it with the tracker first. Returns false when the broker is
     * known not to take it: it is then REFUSED, with the reason, and not published.
     */
    boolean publish(MessageFate p) throws IOException, TimeoutException;

    /** Before a publish: why the broker is known to refuse {@code p} (learnt from earlier failures), or null. */
    String knownRefusal(MessageFate p);

    /** After {@code failure}: why the broker will refuse {@code p} if it is published again, or null to republish it. */
    String refusalAfter(String failure, MessageFate p);

    /**
     * Whether the broker can refuse a message (return it, nack it) after later ones were published
     * and routed: then an aggregate keeps one message awaiting its confirm at a time when its order
     * is kept ({@link AggregateOrder}).
     */
    boolean refusesAfterLaterOnesWent();

    /** The broker's reason while it blocks publishing (a resource alarm), or null. */
    String blockedReason();

    /** When the broker last lifted a block (or the connection was made). */
    long unblockedAtNanos();

    /** Drops the connection when a publish has been stuck in its socket longer than {@code limit}; from any thread. */
    boolean abortIfWriteStuck(Duration limit);

    /** Closes the connection from any thread, freeing a publish stuck in it; the next use reconnects. */
    void abort();

    /** Forgets the connection (after a failure); the next publish opens a fresh one. */
    void reset();

    /** The highest publishing id the broker holds of this relay's producer, seen when it was opened; -1 where messages are not numbered. */
    default long lastPublishingId() {
        return -1;
    }

    @Override
    void close();
}
