package io.outboxrelay.sink;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Finishes the tail that batches leave unconfirmed while the engine thread waits in its poll for
 * new records: marks it processed as its confirms arrive and republishes it after a failure.
 * Without it the last records before a quiet spell would stay unmarked, and a failure among them
 * unhandled, until the next batch, which on an idle outbox is the next heartbeat.
 * <p>
 * It steps in only once the engine thread has been out of {@code handleBatch} for a moment, so
 * under load it does not compete with the engine thread for the pipeline's lock. It is also the
 * watchdog for a publish stuck in its socket write (see {@link io.outboxrelay.sink.amqp.AmqpTransport#abortIfWriteStuck}),
 * which no thread holding the lock could notice.
 */
final class TailFinisher implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(TailFinisher.class);
    /** Between two batches under load the engine thread is away far less than this. */
    private static final long ENGINE_QUIET_NANOS = TimeUnit.MILLISECONDS.toNanos(2);
    private static final long LOOK_AGAIN_NANOS = TimeUnit.MILLISECONDS.toNanos(5);
    /** With no tail there is nothing to hurry: this only bounds how long a new tail waits to be noticed. */
    private static final long IDLE_LOOK_AGAIN_NANOS = TimeUnit.MILLISECONDS.toNanos(50);
    private static final long MAX_WAIT_MILLIS = 100;

    private final PublishPipeline pipeline;
    private final ConfirmTracker tracker;
    private final Transport broker;
    private final Duration writeLimit;
    private final Thread thread;
    private volatile boolean engineInBatch;
    private volatile long engineLeftAtNanos = System.nanoTime();
    /** Set once the engine thread will not enter the sink again (draining). */
    private volatile boolean engineGone;
    private volatile boolean closed;

    TailFinisher(PublishPipeline pipeline, ConfirmTracker tracker, Transport broker, String relayName, Duration writeLimit) {
        this.pipeline = pipeline;
        this.tracker = tracker;
        this.broker = broker;
        this.writeLimit = writeLimit;
        this.thread = new Thread(this::run, "outbox-relay-tail " + relayName);
        thread.setDaemon(true);
    }

    void start() {
        thread.start();
    }

    void engineEntered() {
        engineInBatch = true;
    }

    void engineLeft() {
        engineLeftAtNanos = System.nanoTime();
        engineInBatch = false;
    }

    /** The engine is stopping and will not call the sink again. */
    void engineGone() {
        engineGone = true;
        LockSupport.unpark(thread);
    }

    private void run() {
        try {
            while (!closed) {
                broker.abortIfWriteStuck(writeLimit);
                if (pipeline.unmarked() > 0 && engineQuiet() && pipeline.tryLock()) {
                    long seen = tracker.changes();
                    PublishPipeline.Progress progress;
                    try {
                        progress = pipeline.advance();
                    }
                    catch (RuntimeException e) {
                        // Nothing was marked past the record that failed; the next pass, or the engine thread, meets it again.
                        LOG.error("Finishing the unconfirmed tail failed: {}", e.toString());
                        progress = PublishPipeline.Progress.BACKING_OFF;
                    }
                    finally {
                        pipeline.unlock();
                    }
                    if (pipeline.unmarked() > 0) {
                        long wait = progress == PublishPipeline.Progress.BACKING_OFF ? Math.min(MAX_WAIT_MILLIS, Math.max(1, pipeline.millisUntilRetry()))
                                : MAX_WAIT_MILLIS;
                        tracker.awaitChangeSince(seen, wait);
                    }
                }
                else {
                    LockSupport.parkNanos(pipeline.unmarked() > 0 ? LOOK_AGAIN_NANOS : IDLE_LOOK_AGAIN_NANOS);
                }
            }
        }
        catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    private boolean engineQuiet() {
        return engineGone || (!engineInBatch && System.nanoTime() - engineLeftAtNanos > ENGINE_QUIET_NANOS);
    }

    @Override
    public void close() {
        closed = true;
        thread.interrupt();
        try {
            thread.join(5_000);
        }
        catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
