package io.outboxrelay.sink;

import java.io.IOException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BiConsumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.kafka.connect.source.SourceRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.outboxrelay.config.SinkConfig;
import io.outboxrelay.metrics.RelayMetrics;

/**
 * The records the engine has handed to the sink and that are not yet marked processed, in source
 * order and across batches. It publishes them within the confirm window, marks them processed
 * strictly in order up to the last contiguous finished one, and after a failure rewinds to the
 * first unconfirmed one and republishes from there with the same message ids.
 * <p>
 * Carrying the unconfirmed tail from one batch into the next is what lets the engine poll again
 * while confirms are on their way: a batch then costs a publish, not a confirm round trip and an
 * offset flush, so batches can be as small as one record and a lone event leaves at once.
 * <p>
 * Two threads drive it, one at a time under its lock: the engine thread in {@code handleBatch},
 * and the {@link TailFinisher} while the engine thread waits for new records. Debezium's record
 * committer is not thread-safe; every use of it happens under this lock.
 */
final class PublishPipeline {

    private static final Logger LOG = LoggerFactory.getLogger(PublishPipeline.class);
    private static final Pattern MISSING_EXCHANGE = Pattern.compile("NOT_FOUND - no exchange '([^']*)'");
    private static final Pattern TOO_LARGE = Pattern.compile("message size (\\d+) is larger than (?:configured )?max size (\\d+)");

    /** What an {@link #advance} left to do. */
    enum Progress {
        /** Everything is published; what remains waits only for confirms. */
        PUBLISHED,
        /** Records wait for room in the confirm window. */
        WINDOW_FULL,
        /** A failure was met; publishing resumes after the back-off. */
        BACKING_OFF
    }

    private final SinkConfig sink;
    private final RelayMetrics metrics;
    private final ConfirmTracker tracker;
    private final BrokerConnection broker;
    /** Handles a record the broker returned or cannot take: dead-letters it, or throws to stop the engine. */
    private final BiConsumer<Publication, String> onReturned;
    private final ReentrantLock lock = new ReentrantLock();
    private final ArrayDeque<Publication> unmarked = new ArrayDeque<>();
    private final ArrayDeque<Publication> unpublished = new ArrayDeque<>();
    private final Set<String> declaredQueues = new HashSet<>();
    private DebeziumEngine.RecordCommitter<ChangeEvent<SourceRecord, SourceRecord>> committer;
    private Duration backoff;
    private long retryAtNanos;
    /** The broker's max_message_size once a message exceeded it (the broker closes the channel on such a publish); 0 until then. */
    private long brokerMaxMessageSize;
    private volatile boolean recovering;
    private volatile int unmarkedCount;
    /** Commit time of the oldest record not yet confirmed; 0 when there is none. */
    private volatile long oldestUnconfirmedCommitMicros;

    PublishPipeline(SinkConfig sink, RelayMetrics metrics, ConfirmTracker tracker, BrokerConnection broker,
                    BiConsumer<Publication, String> onReturned) {
        this.sink = sink;
        this.metrics = metrics;
        this.tracker = tracker;
        this.broker = broker;
        this.onReturned = onReturned;
        this.backoff = sink.retryBackoffInitial();
        this.retryAtNanos = System.nanoTime();
    }

    void lock() {
        lock.lock();
    }

    boolean tryLock() {
        return lock.tryLock();
    }

    void unlock() {
        lock.unlock();
    }

    /** Appends a batch behind what is still unfinished. Under the lock. */
    void append(List<Publication> batch, DebeziumEngine.RecordCommitter<ChangeEvent<SourceRecord, SourceRecord>> batchCommitter) {
        committer = batchCommitter;
        for (Publication p : batch) {
            unmarked.add(p);
            if (p.state == Publication.State.PENDING) {
                unpublished.add(p);
            }
        }
        unmarkedCount = unmarked.size();
    }

    /**
     * One step that never waits: recovers from a failure the tracker reports, publishes while the
     * window has room, and marks processed what is finished. With {@code handleReturned} a returned
     * record is dead-lettered (or stops the engine by throwing, which only the engine thread may
     * do); without it marking stops in front of it. Under the lock.
     */
    Progress advance(boolean handleReturned) throws InterruptedException {
        String failure = tracker.failure();
        if (failure == null && confirmOverdue()) {
            failure = "no confirm within " + sink.ackTimeout().toMillis() + " ms (debezium.sink.rabbitmq.ackTimeout) for "
                    + tracker.inFlight() + " message(s)";
        }
        if (failure != null) {
            recover(failure);
        }
        if (System.nanoTime() - retryAtNanos < 0) {
            markFinished(handleReturned);
            return Progress.BACKING_OFF;
        }
        try {
            publishWhileRoom();
        }
        catch (IOException | TimeoutException | RuntimeException e) {
            recover(e.getClass().getSimpleName() + ": " + e.getMessage());
            markFinished(handleReturned);
            return Progress.BACKING_OFF;
        }
        if (tracker.failure() == null) {
            backoff = sink.retryBackoffInitial();
            recovering = false;
        }
        markFinished(handleReturned);
        return unpublished.isEmpty() ? Progress.PUBLISHED : Progress.WINDOW_FULL;
    }

    /** Lets the engine's commit policy flush the offsets marked so far. Under the lock, on the engine thread. */
    void flush() throws InterruptedException {
        if (committer != null) {
            committer.markBatchFinished();
        }
    }

    /** How long a waiting caller may sleep before the next {@link #advance} has something new to try. */
    long millisUntilRetry() {
        long left = retryAtNanos - System.nanoTime();
        return left <= 0 ? 0 : Math.max(1, left / 1_000_000);
    }

    /** Records handed over and not yet marked processed. */
    int unmarked() {
        return unmarkedCount;
    }

    boolean recovering() {
        return recovering;
    }

    long oldestUnconfirmedCommitMicros() {
        return oldestUnconfirmedCommitMicros;
    }

    private void publishWhileRoom() throws IOException, TimeoutException, InterruptedException {
        while (!unpublished.isEmpty()) {
            Publication p = unpublished.peek();
            if (brokerMaxMessageSize > 0 && p.message.body().length > brokerMaxMessageSize) {
                // Known to be refused: parking it here spares a channel close and reconnect per oversized event.
                park(p, tooLarge(p.message.body().length));
                unpublished.poll();
                continue;
            }
            if (!tracker.awaitRoom(sink.maxInFlight(), 0)) {
                return;
            }
            if (sink.autoCreateRoutingKey() && sink.routingKeySource() == SinkConfig.RoutingKeySource.TOPIC
                    && declaredQueues.add(p.message.routingKey())) {
                broker.declareQueue(p.message.routingKey(), sink.routingKeyDurable());
            }
            broker.publish(p);
            metrics.published(p.message.exchange());
            unpublished.poll();
        }
    }

    /** Marks processed, in order, every record from the head on that is finished. */
    private void markFinished(boolean handleReturned) throws InterruptedException {
        while (!unmarked.isEmpty()) {
            Publication p = unmarked.peek();
            String returned;
            synchronized (tracker) {
                if (p.state == Publication.State.CONFIRMED) {
                    if (p.returnReason != null && !handleReturned) {
                        break;
                    }
                    p.state = Publication.State.DONE;
                }
                else if (p.state != Publication.State.DONE) {
                    break;
                }
                returned = p.returnReason;
                p.returnReason = null;
            }
            if (returned != null) {
                onReturned.accept(p, returned);
            }
            committer.markProcessed(p.event);
            unmarked.poll();
        }
        unmarkedCount = unmarked.size();
        oldestUnconfirmedCommitMicros = oldestUnconfirmed();
    }

    private long oldestUnconfirmed() {
        synchronized (tracker) {
            for (Publication p : unmarked) {
                if (p.state == Publication.State.PENDING || p.state == Publication.State.IN_FLIGHT) {
                    return p.commitMicros;
                }
            }
        }
        return 0;
    }

    /** Abandons the channel and rewinds to the first unconfirmed record; publishing resumes after the back-off. */
    private void recover(String failure) {
        recovering = true;
        metrics.reconnected();
        List<Publication> lost = tracker.abandon();
        broker.reset();
        String missingExchange = missingExchange(failure);
        Matcher tooLarge = TOO_LARGE.matcher(failure);
        if (tooLarge.find()) {
            brokerMaxMessageSize = Long.parseLong(tooLarge.group(2));
        }
        unpublished.clear();
        int parked = 0;
        for (Publication p : unmarked) {
            if (p.state != Publication.State.PENDING) {
                continue;
            }
            if (missingExchange != null && missingExchange.equals(p.message.exchange())) {
                park(p, "unroutable: exchange '" + missingExchange + "' does not exist");
                parked++;
            }
            else if (brokerMaxMessageSize > 0 && p.message.body().length > brokerMaxMessageSize) {
                park(p, tooLarge(p.message.body().length));
                parked++;
            }
            else {
                unpublished.add(p);
            }
        }
        LOG.warn("RabbitMQ publishing failed ({}); {} unconfirmed message(s) will be republished with their message ids{}",
                failure, lost.size() - parked, parked > 0 ? ", " + parked + " that the broker cannot take are dead-lettered" : "");
        retryAtNanos = System.nanoTime() + backoff.toNanos();
        Duration doubled = backoff.multipliedBy(2);
        backoff = doubled.compareTo(sink.retryBackoffMax()) > 0 ? sink.retryBackoffMax() : doubled;
    }

    /** Finishes a record the broker cannot take without publishing it: it is dead-lettered when marked. */
    private void park(Publication p, String reason) {
        synchronized (tracker) {
            p.returnReason = reason;
            p.state = Publication.State.CONFIRMED;
        }
    }

    private boolean confirmOverdue() {
        long oldest = tracker.oldestPublishedAtNanos();
        return oldest >= 0 && System.nanoTime() - oldest > sink.ackTimeout().toNanos();
    }

    private String tooLarge(int size) {
        return "too large: the body has " + size + " bytes, RabbitMQ's max_message_size is " + brokerMaxMessageSize;
    }

    private static String missingExchange(String failure) {
        Matcher m = MISSING_EXCHANGE.matcher(failure);
        return m.find() ? m.group(1) : null;
    }
}
