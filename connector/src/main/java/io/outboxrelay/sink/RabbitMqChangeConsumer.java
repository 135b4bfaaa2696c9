package io.outboxrelay.sink;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeoutException;

import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.source.SourceRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.rabbitmq.client.AMQP;

import io.debezium.data.Envelope;
import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.outboxrelay.config.RelaySettings;
import io.outboxrelay.config.RelaySettings.FailurePolicy;
import io.outboxrelay.config.SinkConfig;
import io.outboxrelay.deadletter.DeadLetter;
import io.outboxrelay.deadletter.DeadLetterTable;
import io.outboxrelay.metrics.RelayMetrics;
import io.outboxrelay.transforms.OutboxHeaders;

/**
 * The RabbitMQ sink as Debezium sees it: turns each batch into publications (dead-lettering rows
 * the router found invalid) and hands them to the {@link PublishPipeline}, which publishes with
 * asynchronous publisher confirms inside a bounded window and marks records processed strictly in
 * order, only up to the last contiguous one that is confirmed (or dead-lettered, or not for
 * publishing). On a nack, a confirm time-out or a lost connection it reconnects with back-off and
 * republishes everything unconfirmed with the same message ids: the stream pauses, it never skips.
 */
public final class RabbitMqChangeConsumer implements DebeziumEngine.ChangeConsumer<ChangeEvent<SourceRecord, SourceRecord>>, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(RabbitMqChangeConsumer.class);

    private final SinkConfig sink;
    private final RelaySettings relay;
    private final RelayMetrics metrics;
    private final ConfirmTracker tracker;
    private final BrokerConnection broker;
    private final PublishPipeline pipeline;
    private final TailFinisher finisher;
    private final MessageMapper mapper;
    private final DeadLetterTable deadLetters;
    private final JsonConverter rowJson = new JsonConverter();
    private final ObjectMapper objectMapper = new ObjectMapper();
    private final Set<String> warnedTopics = new HashSet<>();
    private volatile long stopDeadlineNanos = Long.MAX_VALUE;
    private volatile boolean stopping;
    private final Object batchLock = new Object();
    private boolean inBatch;

    public RabbitMqChangeConsumer(SinkConfig sink, RelaySettings relay, DeadLetterTable deadLetters, RelayMetrics metrics) {
        this.sink = sink;
        this.relay = relay;
        this.metrics = metrics;
        this.tracker = new ConfirmTracker(metrics);
        if (!sink.exchange().isEmpty()) {
            metrics.expectExchange(sink.exchange());
        }
        this.broker = new BrokerConnection(sink, "outbox-relay " + relay.name(), tracker);
        this.pipeline = new PublishPipeline(sink, metrics, tracker, broker, this::unroutable);
        this.finisher = new TailFinisher(pipeline, tracker, relay.name(), relay.onUnroutable() != FailurePolicy.FAIL);
        this.mapper = new MessageMapper(sink, relay.name());
        this.deadLetters = deadLetters;
        rowJson.configure(Map.of("schemas.enable", "false", "converter.type", "value"), false);
    }

    /** Opens the broker connection now, so that a wrong address fails at start rather than at the first event. */
    public void connect() throws IOException, TimeoutException {
        broker.channel();
        if (sink.autoCreateRoutingKey() && sink.routingKeySource() == SinkConfig.RoutingKeySource.STATIC && !sink.routingKey().isEmpty()) {
            broker.declareQueue(sink.routingKey(), sink.routingKeyDurable());
        }
        finisher.start();
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

    /** How far behind its source commit the oldest record not yet confirmed is; 0 when everything is. */
    public double secondsBehindSource() {
        long commit = pipeline.oldestUnconfirmedCommitMicros();
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
        List<Publication> batch = new ArrayList<>(events.size());
        for (ChangeEvent<SourceRecord, SourceRecord> event : events) {
            batch.add(classify(event));
        }
        pipeline.lock();
        try {
            pipeline.append(batch, committer);
            while (true) {
                long seen = tracker.changes();
                PublishPipeline.Progress progress = pipeline.advance(true);
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

    private Publication classify(ChangeEvent<SourceRecord, SourceRecord> event) {
        SourceRecord record = event.value();
        if (record == null || !OutboxHeaders.isOutboxEvent(record)) {
            warnIfData(record);
            return new Publication(event, null);
        }
        String invalid = OutboxHeaders.invalidReason(record);
        if (invalid != null) {
            if (relay.onInvalid() == FailurePolicy.FAIL) {
                throw new DeadLetterFailure("outbox event " + OutboxHeaders.string(record, OutboxHeaders.MESSAGE_ID)
                        + " cannot be published (" + invalid + ") and relay.on-invalid=fail");
            }
            deadLetter(invalidLetter(record, invalid));
            return new Publication(event, null);
        }
        return new Publication(event, mapper.map(record));
    }

    private void giveUpIfStopDeadlinePassed(int unfinished) {
        if (stopping && System.nanoTime() > stopDeadlineNanos) {
            throw new SinkStoppedException("stopping: " + unfinished + " record(s) were not confirmed within relay.shutdown.grace.ms;"
                    + " they stay unacknowledged and are published again on the next start");
        }
    }

    private void unroutable(Publication p, String reason) {
        SourceRecord record = p.event.value();
        String eventId = p.message.messageId();
        if (relay.onUnroutable() == FailurePolicy.FAIL) {
            throw new DeadLetterFailure("outbox event " + eventId + " was returned by RabbitMQ (" + reason + ") and relay.on-unroutable=fail");
        }
        if (reason.startsWith("unroutable")) {
            metrics.returned(p.message.exchange());
        }
        LOG.atWarn().addKeyValue("event_id", eventId).addKeyValue("aggregate_id", record.key())
                .log("Outbox event {} (aggregate {}) not delivered, {}; written to {}", eventId, record.key(), reason, deadLetters.table());
        deadLetter(new DeadLetter(eventId, reason, p.message.exchange(), p.message.routingKey(), p.message.body(),
                propertiesJson(p.message.properties()), record.topic(), record.key() == null ? null : String.valueOf(record.key())));
    }

    private DeadLetter invalidLetter(SourceRecord record, String reason) {
        String eventId = OutboxHeaders.string(record, OutboxHeaders.MESSAGE_ID);
        LOG.atWarn().addKeyValue("event_id", eventId).addKeyValue("aggregate_id", record.key())
                .log("Outbox row {} (aggregate {}, topic {}) cannot be published: {}; written to {}", eventId, record.key(), record.topic(), reason,
                        deadLetters.table());
        Map<String, Object> headers = new LinkedHashMap<>();
        for (Header h : record.headers()) {
            headers.put(h.key(), h.value() == null ? null : h.value().toString());
        }
        byte[] row = record.value() == null ? null : rowJson.fromConnectData(record.topic(), record.valueSchema(), record.value());
        return new DeadLetter(eventId, reason, OutboxHeaders.string(record, OutboxHeaders.EXCHANGE),
                OutboxHeaders.string(record, OutboxHeaders.ROUTING_KEY), row, json(headers), record.topic(),
                record.key() == null ? null : String.valueOf(record.key()));
    }

    /** Synchronized: the engine thread and the tail finisher both write dead letters through one connection. */
    private synchronized void deadLetter(DeadLetter letter) {
        try {
            deadLetters.write(letter);
            metrics.deadLettered(letter.exchange());
        }
        catch (SQLException e) {
            throw new DeadLetterFailure(e.getMessage(), e);
        }
    }

    private String propertiesJson(AMQP.BasicProperties props) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("message-id", props.getMessageId());
        m.put("type", props.getType());
        m.put("content-type", props.getContentType());
        m.put("correlation-id", props.getCorrelationId());
        m.put("timestamp", props.getTimestamp() == null ? null : props.getTimestamp().getTime());
        m.put("app-id", props.getAppId());
        m.put("delivery-mode", props.getDeliveryMode());
        Map<String, Object> headers = new LinkedHashMap<>();
        if (props.getHeaders() != null) {
            props.getHeaders().forEach((k, v) -> headers.put(k, v instanceof byte[] b ? new String(b, StandardCharsets.UTF_8) : String.valueOf(v)));
        }
        m.put("headers", headers);
        return json(m);
    }

    private String json(Map<String, Object> map) {
        try {
            return objectMapper.writeValueAsString(map);
        }
        catch (JsonProcessingException e) {
            return "{}";
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

    /** A dead letter could not be written, or a policy says to stop: the engine must stop, nothing is marked. */
    static final class DeadLetterFailure extends RuntimeException {
        DeadLetterFailure(String message) {
            super(message);
        }

        DeadLetterFailure(String message, Throwable cause) {
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
