package io.outboxrelay.sink;

import java.io.IOException;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.ReentrantLock;

import org.apache.kafka.connect.source.SourceRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.outboxrelay.config.Delivery;
import io.outboxrelay.metrics.RelayMetrics;

/**
 * The records the engine has handed to the sink and that are not yet marked processed, in source
 * order and across batches. It publishes them within the window, marks them processed strictly in
 * order up to the last contiguous one whose outcome is durable, and after a failure rewinds to the
 * first unconfirmed one and republishes from there with the same message ids.
 * <p>
 * Carrying the unconfirmed tail from one batch into the next is what lets the engine poll again
 * while confirms are on their way: a batch then costs a publish, not a confirm round trip and an
 * offset flush, so batches can be as small as one record and a lone event leaves at once.
 * <p>
 * The window ({@code max.in.flight}, {@code max.in.flight.bytes}) counts every message published
 * and not yet marked, not only the unconfirmed ones: while a dead letter cannot be written,
 * confirmed records pile up behind it, and the window is what stops the engine then. A record
 * that waits for an earlier one of its aggregate ({@link AggregateOrder}) counts as published:
 * records are let into the window in source order, so one let in never waits for room.
 * <p>
 * Two threads drive it, one at a time under its lock: the engine thread in {@code handleBatch},
 * and the {@link TailFinisher} while the engine thread waits for new records. Debezium's record
 * committer is not thread-safe; every use of it happens under this lock.
 */
final class PublishPipeline {

    private static final Logger LOG = LoggerFactory.getLogger(PublishPipeline.class);
    private static final Duration PARK_RETRY_MAX = Duration.ofSeconds(30);

    /** What an {@link #advance} left to do. */
    enum Progress {
        /** Everything is published; what remains waits only for confirms (or a dead-letter write). */
        PUBLISHED,
        /** Records wait for room in the window, or for the broker to stop blocking the connection. */
        WINDOW_FULL,
        /** A failure was met; publishing resumes after the back-off. */
        BACKING_OFF
    }

    private final Delivery sink;
    private final RelayMetrics metrics;
    private final ConfirmTracker tracker;
    private final Transport broker;
    private final Parking parking;
    private final AggregateOrder order;
    /** Asks for the engine to be stopped: a policy says so, and the engine thread may not come back to throw. */
    private final Runnable stopEngine;
    /** The lease: asked before every publish (a pause while it is not renewed; the end once another relay leads or it ran out). */
    private final PublishPermit permit;
    private final ReentrantLock lock = new ReentrantLock();
    private final ArrayDeque<MessageFate> unmarked = new ArrayDeque<>();
    private final ArrayDeque<MessageFate> unpublished = new ArrayDeque<>();
    private DebeziumEngine.RecordCommitter<ChangeEvent<SourceRecord, SourceRecord>> committer;
    /** Set once a record that a fail policy stops at was appended: nothing behind it is published, since it would only be published again. */
    private boolean stopAhead;
    private Duration backoff;
    private long retryAtNanos;
    private Duration parkBackoff;
    private long parkRetryAtNanos;
    /** Messages published (at least once) and not yet marked, and their body bytes: the window. */
    private int windowCount;
    private long windowBytes;
    private volatile boolean recovering;
    private volatile int unmarkedCount;
    private volatile long heldBytes;
    /** Commit time of the oldest record not yet delivered or parked; 0 when there is none. */
    private volatile long oldestUnfinishedCommitMicros;
    /** Why the dead-letter table refuses the head record, while it does. */
    private volatile String parkFailure;
    /** Why the relay must stop (a fail policy met a record); once set, nothing more is marked. */
    private volatile String fatal;

    PublishPipeline(Delivery sink, RelayMetrics metrics, ConfirmTracker tracker, Transport broker, Parking parking, AggregateOrder order,
                    Runnable stopEngine, PublishPermit permit) {
        this.order = order;
        this.permit = permit;
        this.sink = sink;
        this.metrics = metrics;
        this.tracker = tracker;
        this.broker = broker;
        this.parking = parking;
        this.stopEngine = stopEngine;
        this.backoff = sink.retryBackoffInitial();
        this.retryAtNanos = System.nanoTime();
        this.parkBackoff = sink.retryBackoffInitial();
        this.parkRetryAtNanos = System.nanoTime();
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

    /**
     * Appends a batch behind what is still unfinished. Under the lock. Throws when the dead-letter
     * table cannot say which of its aggregates are held (relay.dead-letter.order=keep-aggregate).
     */
    void append(List<MessageFate> batch, DebeziumEngine.RecordCommitter<ChangeEvent<SourceRecord, SourceRecord>> batchCommitter) throws SQLException {
        order.appended(batch);
        committer = batchCommitter;
        for (MessageFate p : batch) {
            unmarked.add(p);
            if (p.state() == MessageFate.State.PENDING && !stopAhead) {
                unpublished.add(p);
            }
            else if (p.state() == MessageFate.State.REFUSED && parking.stopReason(p) != null) {
                stopAhead = true;
            }
        }
        unmarkedCount = unmarked.size();
    }

    /**
     * One step that never waits: recovers from a failure the tracker reports, publishes while the
     * window has room, parks what is refused and marks processed what is finished. Under the lock.
     */
    Progress advance() throws InterruptedException {
        if (fatal != null) {
            // The engine is being stopped; nothing more is published or marked.
            return Progress.BACKING_OFF;
        }
        String failure = tracker.failure();
        if (failure == null && confirmOverdue()) {
            failure = "no confirm within " + sink.ackTimeout().toMillis() + " ms (" + sink.ackTimeoutKey() + ") for "
                    + tracker.inFlight() + " message(s)";
        }
        if (failure != null) {
            recover(failure);
        }
        if (System.nanoTime() - retryAtNanos < 0) {
            markFinished();
            return Progress.BACKING_OFF;
        }
        try {
            publishWhileRoom();
        }
        catch (IOException | TimeoutException | RuntimeException e) {
            recover(e.getClass().getSimpleName() + ": " + e.getMessage());
            markFinished();
            return Progress.BACKING_OFF;
        }
        if (tracker.failure() == null) {
            backoff = sink.retryBackoffInitial();
            recovering = false;
        }
        markFinished();
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
        long now = System.nanoTime();
        long left = retryAtNanos - now;
        if (parkFailure != null) {
            long park = parkRetryAtNanos - now;
            left = left <= 0 ? park : Math.min(left, park);
        }
        return left <= 0 ? 0 : Math.max(1, left / 1_000_000);
    }

    /** Records handed over and not yet marked processed. */
    int unmarked() {
        return unmarkedCount;
    }

    /** Body bytes of the messages in the window. */
    long heldBytes() {
        return heldBytes;
    }

    boolean recovering() {
        return recovering;
    }

    long oldestUnfinishedCommitMicros() {
        return oldestUnfinishedCommitMicros;
    }

    /** Why a dead letter cannot be written right now, or null. */
    String parkFailure() {
        return parkFailure;
    }

    /** Why the relay must stop, or null. */
    String fatal() {
        return fatal;
    }

    private void publishWhileRoom() throws IOException, TimeoutException, InterruptedException {
        order.releaseSettled(unpublished);
        while (!unpublished.isEmpty()) {
            if (tracker.failure() != null) {
                // The connection failed while this loop published: whatever goes out on it now would be published again anyway,
                // and into a stream it would overtake, with higher ids, the messages that failed. The next advance recovers first.
                return;
            }
            MessageFate p = unpublished.peek();
            AggregateOrder.Verdict verdict = order.verdict(p);
            if (verdict == AggregateOrder.Verdict.HOLD) {
                p.hold(order.holdReason(p));
                unpublished.poll();
                continue;
            }
            if (verdict == AggregateOrder.Verdict.WAIT) {
                if (!roomFor(p)) {
                    return;
                }
                // In the window from now on, as if published: what is published past it then stays bounded, and it finds room
                // when it may go, since it holds its place already.
                admit(p);
                unpublished.poll();
                order.await(p);
                continue;
            }
            String refusal = broker.knownRefusal(p);
            if (refusal != null) {
                p.refuse(refusal);
                unpublished.poll();
                continue;
            }
            if (!roomFor(p) || broker.blockedReason() != null) {
                // While the broker blocks the connection a publish can hang in a socket write, holding this lock; so none is tried.
                return;
            }
            broker.prepare(p);
            PublishPermit.Answer answer = permit.ask();
            if (answer == PublishPermit.Answer.ENDED) {
                stepDown();
                return;
            }
            if (answer == PublishPermit.Answer.PAUSED) {
                // Left for the next advance: the caller waits a moment, as for room in the window.
                return;
            }
            if (!broker.publish(p)) {
                unpublished.poll();
                continue;
            }
            admit(p);
            metrics.published(p.message.destination());
            unpublished.poll();
        }
    }

    /** Nothing more is published or marked by this process: what it has not marked is read again by the next leader. */
    private void stepDown() {
        if (fatal == null) {
            fatal = "this relay's lease ended (another relay leads, or it was not renewed in time): stepping down";
            LOG.warn("{}; {} message(s) not yet marked are left to the next leader", fatal, unmarked.size());
            stopEngine.run();
        }
    }

    /**
     * A message larger than the byte window goes alone, so that no size is stuck forever; and the
     * oldest record not yet marked always may, since nothing behind it can be marked before it.
     */
    private boolean roomFor(MessageFate p) {
        if (p.inWindow || windowCount == 0 || p == unmarked.peek()) {
            return true;
        }
        return windowCount < sink.maxInFlight() && windowBytes + p.bytes() <= sink.maxInFlightBytes();
    }

    /** Counts {@code p} in the window, once, from when it is published or set to wait for an earlier one of its aggregate until it is marked. */
    private void admit(MessageFate p) {
        if (!p.inWindow) {
            p.inWindow = true;
            windowCount++;
            windowBytes += p.bytes();
            heldBytes = windowBytes;
        }
    }

    /**
     * Marks processed, in order, every record from the head on whose outcome is durable; parks the
     * head when it is refused. Stops at the first record still on its way, at a dead letter that
     * cannot be written (retried after a back-off) and for good once a fail policy is met.
     */
    private void markFinished() throws InterruptedException {
        // Of a run of records finished together only the last one's position is handed to Debezium: the stored offset is the
        // last position it was given, so the ones before would only be overwritten (and cost an offset map each).
        MessageFate last = null;
        while (!unmarked.isEmpty() && fatal == null) {
            MessageFate p = unmarked.peek();
            if (p.state() == MessageFate.State.REFUSED && !park(p)) {
                break;
            }
            if (!p.markable()) {
                break;
            }
            p.done();
            order.marked(p);
            if (p.movesOffset()) {
                last = p;
            }
            unmarked.poll();
            if (p.inWindow) {
                windowCount--;
                windowBytes -= p.bytes();
            }
        }
        if (last != null) {
            last.markProcessed(committer);
        }
        heldBytes = windowBytes;
        unmarkedCount = unmarked.size();
        oldestUnfinishedCommitMicros = oldestUnfinished();
    }

    /** Parks the refused head record; false while it cannot be (the table refuses it, or the relay must stop). */
    private boolean park(MessageFate p) {
        String stop = parking.stopReason(p);
        if (stop != null) {
            fatal = stop;
            LOG.error("{}: stopping; nothing from this event on is acknowledged, so it is read again on the next start", stop);
            stopEngine.run();
            return false;
        }
        if (System.nanoTime() - parkRetryAtNanos < 0) {
            return false;
        }
        try {
            if (!parking.park(p)) {
                p.released();
                order.released(p);
                unpublished.addFirst(p);
                return false;
            }
        }
        catch (SQLException | RuntimeException e) {
            parkRetryAtNanos = System.nanoTime() + parkBackoff.toNanos();
            LOG.error("Cannot park outbox event {} ({}): {}. Nothing from this event on is marked processed; retrying in {} ms",
                    p.message != null ? p.message.messageId() : "(invalid row)", p.reason(), e.getMessage(), parkBackoff.toMillis());
            Duration doubled = parkBackoff.multipliedBy(2);
            parkBackoff = doubled.compareTo(PARK_RETRY_MAX) > 0 ? PARK_RETRY_MAX : doubled;
            parkFailure = "cannot write the dead-letter table " + parking.table() + " (relay.dead-letter.table): " + e.getMessage();
            return false;
        }
        p.parked();
        order.parked(p);
        if (parkFailure != null) {
            LOG.info("The dead-letter table {} takes rows again", parking.table());
        }
        parkFailure = null;
        parkBackoff = sink.retryBackoffInitial();
        return true;
    }

    private long oldestUnfinished() {
        for (MessageFate p : unmarked) {
            if (p.unfinished()) {
                return p.commitMicros;
            }
        }
        return 0;
    }

    /** Abandons the channel and rewinds to the first unconfirmed record; publishing resumes after the back-off. */
    private void recover(String failure) {
        recovering = true;
        metrics.reconnected();
        tracker.abandon();
        broker.reset();
        unpublished.clear();
        order.rewound();
        int refused = 0;
        for (MessageFate p : unmarked) {
            if (p.state() == MessageFate.State.REFUSED && parking.stopReason(p) != null) {
                break;
            }
            if (p.state() != MessageFate.State.PENDING) {
                continue;
            }
            String refusal = broker.refusalAfter(failure, p);
            if (refusal != null) {
                p.refuse(refusal);
                refused++;
            }
            else {
                unpublished.add(p);
            }
        }
        LOG.warn("RabbitMQ publishing failed ({}); {} message(s) not yet confirmed will be published again with their message ids{}",
                failure, unpublished.size(), refused > 0 ? ", " + refused + " that the broker cannot take are dead-lettered" : "");
        retryAtNanos = System.nanoTime() + backoff.toNanos();
        Duration doubled = backoff.multipliedBy(2);
        backoff = doubled.compareTo(sink.retryBackoffMax()) > 0 ? sink.retryBackoffMax() : doubled;
    }

    /**
     * Whether the oldest unconfirmed message waited longer than {@code ackTimeout}. While the broker
     * blocks the connection it confirms nothing that is still in the socket, and that is a pause,
     * not a failure: the clock starts again when the block lifts.
     */
    private boolean confirmOverdue() {
        if (broker.blockedReason() != null) {
            return false;
        }
        long oldest = tracker.oldestPublishedAtNanos();
        if (oldest < 0) {
            return false;
        }
        long unblocked = broker.unblockedAtNanos();
        long since = unblocked - oldest > 0 ? unblocked : oldest;
        return System.nanoTime() - since > sink.ackTimeout().toNanos();
    }

}
