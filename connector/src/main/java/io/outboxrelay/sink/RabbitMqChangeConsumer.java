package io.outboxrelay.sink;

import java.io.IOException;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Function;
import java.util.concurrent.TimeoutException;

import org.apache.kafka.connect.source.SourceRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;


import io.debezium.data.Envelope;
import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.config.Delivery;
import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.RelaySettings;
import io.outboxrelay.config.SinkConfig;
import io.outboxrelay.deadletter.DeadLetterTable;
import io.outboxrelay.metrics.RelayMetrics;
import io.outboxrelay.source.StoredOffset;
import io.outboxrelay.transforms.OutboxHeaders;

/**
 * The RabbitMQ sink as Debezium sees it: turns each batch into publications (an event to publish,
 * a row the router found invalid, a message larger than the relay publishes, a record that is no
 * event) and hands them to the {@link PublishPipeline}, which publishes with asynchronous publisher
 * confirms inside a bounded window, parks what cannot be delivered, and marks records processed
 * strictly in order, only up to the last contiguous one whose outcome is durable. On a nack, a
 * confirm time-out or a lost connection it reconnects with back-off and republishes everything
 * unconfirmed with the same message ids: the stream pauses, it never skips.
 * <p>
 * The same pipeline publishes to exchanges over AMQP ({@link io.outboxrelay.sink.amqp.AmqpTransport}) or to RabbitMQ
 * Streams ({@link io.outboxrelay.sink.stream.StreamTransport}); for streams every event is also numbered
 * ({@link PublishingIds}), which makes what is published again a duplicate the broker drops.
 */
public final class RabbitMqChangeConsumer implements DebeziumEngine.ChangeConsumer<ChangeEvent<SourceRecord, SourceRecord>>, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(RabbitMqChangeConsumer.class);

    private final Delivery sink;
    private final RelayMetrics metrics;
    private final ConfirmTracker tracker;
    private final Transport broker;
    /** Null for the AMQP sink, which does not number messages. */
    private final PublishingIds ids;
    private final ResumePositions positions;
    private final PublishPipeline pipeline;
    private final TailFinisher finisher;
    private final MessageMapper mapper;
    private final Set<String> warnedTopics = new HashSet<>();
    private volatile long stopDeadlineNanos = Long.MAX_VALUE;
    private volatile boolean stopping;
    private final Object batchLock = new Object();
    private boolean inBatch;
    /** The one stream (or super stream) every event goes to, when the configuration names it; null when the topic names it. */
    private final String fixedDestination;

    /**
     * The sink the configuration asks for.
     *
     * @param stopEngine called (from any thread) when a {@code fail} policy meets a record: the engine
     *                   must stop even if no further batch comes to the engine thread
     * @param permit asked before every publish: paused while the lease is not renewed, ended once it is lost
     * @param stored     the offset the engine resumes from (streams go on numbering from it), or null
     * @param transports opens the connection to the broker; the sink's core names no transport, so that
     *                   {@code sink.amqp} and {@code sink.stream} may build on it
     */
    public static RabbitMqChangeConsumer of(RelayConfig config, DeadLetterTable deadLetters, RelayMetrics metrics, Runnable stopEngine,
                                            PublishPermit permit, StoredOffset stored, TransportFactory transports) {
        if (config.streams()) {
            PublishingIds ids = PublishingIds.from(stored, System.currentTimeMillis() * 1_000, config.stream().producerName());
            long watermark = ids.fresh() ? -1 : ids.last();
            return new RabbitMqChangeConsumer(config.delivery(), config.relay(), deadLetters, metrics, stopEngine, permit,
                    tracker -> transports.open(tracker, watermark), new MessageMapper(config.stream(), config.name()),
                    ids, new ResumePositions(stored, ids.last()), config.stream().stream());
        }
        SinkConfig sink = config.sink();
        return new RabbitMqChangeConsumer(sink.delivery(), config.relay(), deadLetters, metrics, stopEngine, permit,
                tracker -> transports.open(tracker, -1), new MessageMapper(sink, config.name()), null,
                new ResumePositions(stored, -1), sink.exchange().isEmpty() ? null : sink.exchange());
    }

    private RabbitMqChangeConsumer(Delivery sink, RelaySettings relay, DeadLetterTable deadLetters, RelayMetrics metrics, Runnable stopEngine,
                                   PublishPermit permit, Function<ConfirmTracker, Transport> transport, MessageMapper mapper, PublishingIds ids,
                                   ResumePositions positions, String fixedDestination) {
        this.sink = sink;
        this.metrics = metrics;
        this.tracker = new ConfirmTracker(metrics);
        if (fixedDestination != null) {
            metrics.expectExchange(fixedDestination);
        }
        this.broker = transport.apply(tracker);
        AggregateOrder order = relay.deadLetterOrder() == RelaySettings.DeadLetterOrder.KEEP_AGGREGATE
                ? AggregateOrder.keep(AggregateOrder.HeldLookup.of(deadLetters), broker.refusesAfterLaterOnesWent())
                : AggregateOrder.none();
        this.pipeline = new PublishPipeline(sink, metrics, tracker, broker, new Parking(relay, deadLetters, metrics, ids == null), order, stopEngine, permit);
        this.finisher = new TailFinisher(pipeline, tracker, broker, relay.name(), sink.ackTimeout());
        this.mapper = mapper;
        this.ids = ids;
        this.positions = positions;
        this.fixedDestination = fixedDestination;
    }

    /** Opens the broker connection now, so that a wrong address fails at start rather than at the first event. */
    public void connect() throws IOException, TimeoutException {
        broker.open();
        if (ids != null && ids.fresh()) {
            beginNumbering();
        }
        finisher.start();
    }

    /**
     * A numbering with no stored count begins above the broker's last publishing id of the
     * producer, read when the stream's producer was made; a numbering from this host's clock could
     * lie below one from a predecessor whose clock ran ahead, and the broker would drop every event.
     */
    private void beginNumbering() throws IOException {
        if (fixedDestination == null) {
            ids.beginAtClock();
            return;
        }
        long brokerLast = broker.lastPublishingId();
        if (brokerLast < 0) {
            throw new IOException("cannot read the broker's last publishing id of producer '" + ids.producer() + "' on stream '" + fixedDestination
                    + "', which a first start numbers above (" + io.outboxrelay.config.StreamSinkConfig.PREFIX + "stream, producer.name)");
        }
        ids.beginAbove(brokerLast);
        positions.numberedFrom(ids.last());
    }

    /**
     * Refuses new batches, lets the one under way be published and waits for the confirms of
     * everything published, so that the engine, closed afterwards, commits an offset that covers
     * all of it. What is still unconfirmed when {@code grace} has passed stays unmarked (replayed on
     * the next start). Returns whether everything was finished.
     */
    public boolean drain(Duration grace) throws InterruptedException {
        long deadline = System.nanoTime() + grace.toNanos();
        stopDeadlineNanos = deadline;
        stopping = true;
        synchronized (batchLock) {
            while (inBatch) {
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    return false;
                }
                batchLock.wait(Math.max(1, left / 1_000_000));
            }
        }
        finisher.engineGone();
        while (pipeline.unmarked() > 0) {
            if (System.nanoTime() - deadline > 0) {
                return false;
            }
            Thread.sleep(2);
        }
        return true;
    }

    /**
     * PostgreSQL will resume past the stored offset (the slot is ahead of it, or was made anew), so
     * nothing of the stored position's transaction comes again, and for streams the stored count is
     * stale: numbering goes on above the broker's last publishing id instead. Before the engine starts.
     */
    public void resumePastStoredOffset() {
        if (ids != null) {
            ids.raiseTo(broker.lastPublishingId());
        }
        positions.resumesPastStored(ids == null ? -1 : ids.last());
    }

    /** The broker's reason while it blocks publishing, or null. */
    public String blockedReason() {
        return broker.blockedReason();
    }

    /** Whether the sink is between a failure and a working channel again. */
    public boolean recovering() {
        return pipeline.recovering();
    }

    /** Messages published and not yet confirmed. */
    public int inFlight() {
        return tracker.inFlight();
    }

    /** Body bytes of the messages published and not yet marked processed (the byte window). */
    public long heldBytes() {
        return pipeline.heldBytes();
    }

    /** Why dead letters cannot be written right now (the stream stands before the first one), or null. */
    public String parkFailure() {
        return pipeline.parkFailure();
    }

    /** Why the sink stopped the engine (a {@code fail} policy met a record), or null. */
    public String fatal() {
        return pipeline.fatal();
    }

    /** Drops the broker connection from any thread, freeing a publish stuck in its socket. */
    public void abortBroker() {
        broker.abort();
    }

    /** How far behind its source commit the oldest record not yet delivered or parked is; 0 when everything is. */
    public double secondsBehindSource() {
        long commit = pipeline.oldestUnfinishedCommitMicros();
        return commit == 0 ? 0 : Math.max(0, System.currentTimeMillis() / 1000.0 - commit / 1_000_000.0);
    }

    @Override
    public boolean supportsTombstoneEvents() {
        return false;
    }

    @Override
    public void handleBatch(List<ChangeEvent<SourceRecord, SourceRecord>> events,
                            DebeziumEngine.RecordCommitter<ChangeEvent<SourceRecord, SourceRecord>> committer) throws InterruptedException {
        synchronized (batchLock) {
            if (stopping) {
                // Draining: these records stay unmarked and are read again on the next start.
                return;
            }
            inBatch = true;
        }
        finisher.engineEntered();
        try {
            publishBatch(events, committer);
        }
        finally {
            finisher.engineLeft();
            synchronized (batchLock) {
                inBatch = false;
                batchLock.notifyAll();
            }
        }
    }

    /**
     * Hands the batch to the pipeline and returns once all of it is published: its confirms are
     * awaited while the engine polls for the next batch. It waits here only while the confirm
     * window is full or the broker is failing, which is the back-pressure on the engine.
     */
    private void publishBatch(List<ChangeEvent<SourceRecord, SourceRecord>> events,
                              DebeziumEngine.RecordCommitter<ChangeEvent<SourceRecord, SourceRecord>> committer) throws InterruptedException {
        metrics.batch(events.size());
        List<MessageFate> batch = new ArrayList<>(events.size());
        for (ChangeEvent<SourceRecord, SourceRecord> event : events) {
            batch.add(classify(event));
        }
        pipeline.lock();
        try {
            try {
                pipeline.append(batch, committer);
            }
            catch (SQLException e) {
                // Nothing of the batch is published: the engine stops and the next one reads it again.
                throw new DeadLetterTableUnreadable("cannot tell which aggregates have an event parked, so nothing is published until it can "
                        + "(relay.dead-letter.order=keep-aggregate; set none to publish regardless): " + e.getMessage(), e);
            }
            while (true) {
                long seen = tracker.changes();
                PublishPipeline.Progress progress = pipeline.advance();
                if (pipeline.fatal() != null) {
                    throw new DeadLetterFailure(pipeline.fatal());
                }
                if (progress == PublishPipeline.Progress.PUBLISHED) {
                    break;
                }
                giveUpIfStopDeadlinePassed(pipeline.unmarked());
                pipeline.unlock();
                try {
                    long wait = progress == PublishPipeline.Progress.BACKING_OFF ? pipeline.millisUntilRetry() : sink.ackTimeout().toMillis();
                    tracker.awaitChangeSince(seen, Math.max(1, Math.min(100, wait)));
                }
                finally {
                    pipeline.lock();
                }
            }
            pipeline.flush();
        }
        finally {
            pipeline.unlock();
        }
    }

    /**
     * Decides, in source order, what becomes of one record and where Debezium resumes once it is
     * marked. A record that was finished before a restart (Debezium sends its transaction again from
     * the start) is not published again; for streams it still takes its publishing id, so everything
     * after it keeps the id it had the first time.
     */
    private MessageFate classify(ChangeEvent<SourceRecord, SourceRecord> event) {
        SourceRecord record = event.value();
        boolean outboxEvent = record != null && OutboxHeaders.isOutboxEvent(record);
        ResumePositions.Position at = positions.next(record, ids == null ? -1 : ids.last());
        MessageFate p = at.finishedBefore() ? MessageFate.ignored(event) : classifyEvent(event, record, outboxEvent);
        if (ids != null) {
            ids.number(p, outboxEvent);
        }
        p.resumeAt(at);
        return p;
    }

    private MessageFate classifyEvent(ChangeEvent<SourceRecord, SourceRecord> event, SourceRecord record, boolean outboxEvent) {
        if (!outboxEvent) {
            warnIfData(record);
            return MessageFate.ignored(event);
        }
        String invalid = OutboxHeaders.invalidReason(record);
        if (invalid != null) {
            return MessageFate.invalid(event, invalid);
        }
        OutgoingMessage message = mapper.map(record);
        if (message.body().length > sink.maxMessageBytes()) {
            return MessageFate.refused(event, message, "too large: the body has " + message.body().length + " bytes, more than "
                    + sink.prefix() + "max.message.bytes (" + sink.maxMessageBytes() + ")");
        }
        return MessageFate.of(event, message);
    }

    private void giveUpIfStopDeadlinePassed(int unfinished) {
        if (stopping && System.nanoTime() > stopDeadlineNanos) {
            throw new SinkStoppedException("stopping: " + unfinished + " record(s) were not confirmed within relay.shutdown.grace.ms;"
                    + " they stay unacknowledged and are published again on the next start");
        }
    }

    private void warnIfData(SourceRecord record) {
        if (record != null && Envelope.isEnvelopeSchema(record.valueSchema()) && warnedTopics.add(record.topic())) {
            LOG.warn("Records on topic {} were not produced by the outbox router and are not published; configure "
                    + "io.outboxrelay.transforms.OutboxEventRouter in debezium.transforms", record.topic());
        }
    }

    @Override
    public void close() {
        finisher.close();
        broker.close();
    }

    /** A policy says to stop: the engine must stop, and nothing from the record that met it on is marked. */
    static final class DeadLetterFailure extends RuntimeException {
        DeadLetterFailure(String message) {
            super(message);
        }
    }

    /** The dead-letter table cannot be read while the order per aggregate is kept. */
    static final class DeadLetterTableUnreadable extends RuntimeException {
        DeadLetterTableUnreadable(String message, Throwable cause) {
            super(message, cause);
        }
    }

    /** The grace period ran out while stopping. */
    static final class SinkStoppedException extends RuntimeException {
        SinkStoppedException(String message) {
            super(message);
        }
    }
}
