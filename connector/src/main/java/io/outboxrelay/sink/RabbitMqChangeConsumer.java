package io.outboxrelay.sink;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeoutException;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

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
 * The RabbitMQ sink: publishes a batch of routed outbox records with asynchronous publisher
 * confirms inside a bounded window, and marks records processed strictly in order, only up to the
 * last contiguous one that is confirmed (or dead-lettered, or not for publishing). On a nack, a
 * confirm time-out or a lost connection it reconnects with back-off and republishes everything
 * unconfirmed with the same message ids: the stream pauses, it never skips.
 */
public final class RabbitMqChangeConsumer implements DebeziumEngine.ChangeConsumer<ChangeEvent<SourceRecord, SourceRecord>>, AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(RabbitMqChangeConsumer.class);
    private static final Pattern MISSING_EXCHANGE = Pattern.compile("NOT_FOUND - no exchange '([^']*)'");
    private static final Pattern TOO_LARGE = Pattern.compile("message size (\\d+) is larger than (?:configured )?max size (\\d+)");

    private final SinkConfig sink;
    private final RelaySettings relay;
    private final RelayMetrics metrics;
    private final ConfirmTracker tracker;
    private final BrokerConnection broker;
    private final MessageMapper mapper;
    private final DeadLetterTable deadLetters;
    private final JsonConverter rowJson = new JsonConverter();
    private final ObjectMapper objectMapper = new ObjectMapper();
    private final Set<String> declaredQueues = new HashSet<>();
    private final Set<String> warnedTopics = new HashSet<>();
    private volatile long stopDeadlineNanos = Long.MAX_VALUE;
    private volatile boolean stopping;
    private final Object batchLock = new Object();
    private boolean inBatch;
    /** Commit time of the oldest record of the current batch not yet marked processed; 0 while idle. */
    private volatile long oldestUnmarkedCommitMicros;
    private volatile boolean recovering;
    /** The broker's max_message_size once a message exceeded it (the broker closes the channel on such a publish); 0 until then. */
    private long brokerMaxMessageSize;

    public RabbitMqChangeConsumer(SinkConfig sink, RelaySettings relay, DeadLetterTable deadLetters, RelayMetrics metrics) {
        this.sink = sink;
        this.relay = relay;
        this.metrics = metrics;
        this.tracker = new ConfirmTracker(metrics);
        if (!sink.exchange().isEmpty()) {
            metrics.expectExchange(sink.exchange());
        }
        this.broker = new BrokerConnection(sink, "outbox-relay " + relay.name(), tracker);
        this.mapper = new MessageMapper(sink, relay.name());
        this.deadLetters = deadLetters;
        rowJson.configure(Map.of("schemas.enable", "false", "converter.type", "value"), false);
    }

    /** Opens the broker connection now, so that a wrong address fails at start rather than at the first event. */
    public void connect() throws IOException, TimeoutException {
        broker.channel();
        if (sink.autoCreateRoutingKey() && sink.routingKeySource() == SinkConfig.RoutingKeySource.STATIC && !sink.routingKey().isEmpty()) {
            declareRoutingKeyQueue(sink.routingKey());
        }
    }

    /**
     * Lets the batch under way finish and refuses new ones, so that the engine, closed afterwards,
     * commits an offset that covers everything confirmed. A batch still waiting for confirms when
     * {@code grace} has passed gives up, leaving its unconfirmed tail unmarked (replayed on the next
     * start). Returns whether the sink is idle.
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
        return true;
    }

    /** The broker's reason while it blocks publishing, or null. */
    public String blockedReason() {
        return broker.blockedReason();
    }

    /** Whether the sink is between a failure and a working channel again. */
    public boolean recovering() {
        return recovering;
    }

    /** Messages published and not yet confirmed. */
    public int inFlight() {
        return tracker.inFlight();
    }

    /** How far behind its source commit the oldest unfinished record of the current batch is; 0 while idle. */
    public double secondsBehindSource() {
        long commit = oldestUnmarkedCommitMicros;
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
        try {
            publishBatch(events, committer);
        }
        finally {
            synchronized (batchLock) {
                inBatch = false;
                batchLock.notifyAll();
            }
        }
    }

    private void publishBatch(List<ChangeEvent<SourceRecord, SourceRecord>> events,
                              DebeziumEngine.RecordCommitter<ChangeEvent<SourceRecord, SourceRecord>> committer) throws InterruptedException {
        int n = events.size();
        metrics.batch(n);
        Publication[] batch = new Publication[n];
        for (int i = 0; i < n; i++) {
            batch[i] = classify(i, events.get(i));
        }
        oldestUnmarkedCommitMicros = n > 0 ? batch[0].commitMicros : 0;
        int marked = 0;
        int next = 0;
        Duration backoff = sink.retryBackoffInitial();
        while (marked < n) {
            try {
                long seen = tracker.changes();
                next = publishWhileRoomAndPending(batch, next);
                marked = markCompleted(batch, marked, committer);
                if (marked == n) {
                    break;
                }
                oldestUnmarkedCommitMicros = batch[marked].commitMicros;
                String failure = tracker.failure();
                if (failure == null && confirmOverdue()) {
                    failure = "no confirm within " + sink.ackTimeout().toMillis() + " ms (debezium.sink.rabbitmq.ackTimeout) for "
                            + tracker.inFlight() + " message(s)";
                }
                if (failure != null) {
                    next = recover(batch, marked, failure);
                    backoff = pause(backoff);
                    continue;
                }
                if (next == n || tracker.inFlight() >= sink.maxInFlight()) {
                    tracker.awaitChangeSince(seen, Math.min(100, sink.ackTimeout().toMillis()));
                }
                backoff = sink.retryBackoffInitial();
                recovering = false;
                giveUpIfStopDeadlinePassed(n - marked);
            }
            catch (IOException | TimeoutException | RuntimeException e) {
                if (e instanceof DeadLetterFailure || e instanceof SinkStoppedException) {
                    throw (RuntimeException) e;
                }
                next = recover(batch, marked, e.getClass().getSimpleName() + ": " + e.getMessage());
                backoff = pause(backoff);
            }
        }
        committer.markBatchFinished();
        oldestUnmarkedCommitMicros = 0;
        recovering = false;
    }

    private Publication classify(int index, ChangeEvent<SourceRecord, SourceRecord> event) {
        SourceRecord record = event.value();
        if (record == null || !OutboxHeaders.isOutboxEvent(record)) {
            warnIfData(record);
            return new Publication(index, event, null);
        }
        String invalid = OutboxHeaders.invalidReason(record);
        if (invalid != null) {
            if (relay.onInvalid() == FailurePolicy.FAIL) {
                throw new DeadLetterFailure("outbox event " + OutboxHeaders.string(record, OutboxHeaders.MESSAGE_ID)
                        + " cannot be published (" + invalid + ") and relay.on-invalid=fail");
            }
            deadLetter(invalidLetter(record, invalid));
            return new Publication(index, event, null);
        }
        return new Publication(index, event, mapper.map(record));
    }

    /** Publishes pending records in order while the window has room; returns the index of the first not yet published. */
    private int publishWhileRoomAndPending(Publication[] batch, int next) throws IOException, TimeoutException, InterruptedException {
        while (next < batch.length) {
            Publication p = batch[next];
            if (p.state == Publication.State.PENDING) {
                if (brokerMaxMessageSize > 0 && p.message.body().length > brokerMaxMessageSize) {
                    // Known to be refused: parking it here spares a channel close and reconnect per oversized event.
                    p.returnReason = tooLarge(p.message.body().length);
                    p.state = Publication.State.CONFIRMED;
                    next++;
                    continue;
                }
                if (!tracker.awaitRoom(sink.maxInFlight(), 0) || tracker.failure() != null) {
                    return next;
                }
                if (sink.autoCreateRoutingKey() && sink.routingKeySource() == SinkConfig.RoutingKeySource.TOPIC) {
                    declareRoutingKeyQueue(p.message.routingKey());
                }
                broker.publish(p);
                metrics.published(p.message.exchange());
            }
            next++;
        }
        return next;
    }

    /** Marks processed, in order, every record from {@code marked} on that is finished; returns the new mark. */
    private int markCompleted(Publication[] batch, int marked, DebeziumEngine.RecordCommitter<ChangeEvent<SourceRecord, SourceRecord>> committer)
            throws InterruptedException {
        while (marked < batch.length) {
            Publication p = batch[marked];
            String returned;
            synchronized (tracker) {
                if (p.state == Publication.State.CONFIRMED) {
                    p.state = Publication.State.DONE;
                }
                else if (p.state != Publication.State.DONE) {
                    return marked;
                }
                returned = p.returnReason;
                p.returnReason = null;
            }
            if (returned != null) {
                unroutable(p, returned);
            }
            committer.markProcessed(p.event);
            marked++;
        }
        return marked;
    }

    /** Abandons the channel, reopens it with back-off, and rewinds to the first unconfirmed record. */
    private int recover(Publication[] batch, int marked, String failure) throws InterruptedException {
        recovering = true;
        metrics.reconnected();
        List<Publication> lost = tracker.abandon();
        broker.reset();
        String missingExchange = missingExchange(failure);
        Matcher tooLarge = TOO_LARGE.matcher(failure == null ? "" : failure);
        if (tooLarge.find()) {
            brokerMaxMessageSize = Long.parseLong(tooLarge.group(2));
        }
        int parked = 0;
        for (Publication p : batch) {
            if (p.state != Publication.State.PENDING || p.message == null) {
                continue;
            }
            if (missingExchange != null && missingExchange.equals(p.message.exchange())) {
                p.returnReason = "unroutable: exchange '" + missingExchange + "' does not exist";
            }
            else if (brokerMaxMessageSize > 0 && p.message.body().length > brokerMaxMessageSize) {
                p.returnReason = tooLarge(p.message.body().length);
            }
            else {
                continue;
            }
            p.state = Publication.State.CONFIRMED;
            parked++;
        }
        LOG.warn("RabbitMQ publishing failed ({}); {} unconfirmed message(s) will be republished with their message ids{}",
                failure, lost.size() - parked, parked > 0 ? ", " + parked + " that the broker cannot take are dead-lettered" : "");
        giveUpIfStopDeadlinePassed(batch.length - marked);
        return marked;
    }

    private Duration pause(Duration backoff) throws InterruptedException {
        Thread.sleep(backoff.toMillis());
        Duration doubled = backoff.multipliedBy(2);
        return doubled.compareTo(sink.retryBackoffMax()) > 0 ? sink.retryBackoffMax() : doubled;
    }

    private boolean confirmOverdue() {
        long oldest = tracker.oldestPublishedAtNanos();
        return oldest >= 0 && System.nanoTime() - oldest > sink.ackTimeout().toNanos();
    }

    private void giveUpIfStopDeadlinePassed(int unfinished) {
        if (stopping && System.nanoTime() > stopDeadlineNanos) {
            throw new SinkStoppedException("stopping: " + unfinished + " record(s) of the batch were not confirmed within relay.shutdown.grace.ms;"
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

    private void deadLetter(DeadLetter letter) {
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

    private void declareRoutingKeyQueue(String name) throws IOException, TimeoutException {
        if (declaredQueues.add(name)) {
            broker.declareQueue(name, sink.routingKeyDurable());
        }
    }

    private void warnIfData(SourceRecord record) {
        if (record != null && Envelope.isEnvelopeSchema(record.valueSchema()) && warnedTopics.add(record.topic())) {
            LOG.warn("Records on topic {} were not produced by the outbox router and are not published; configure "
                    + "io.outboxrelay.transforms.OutboxEventRouter in debezium.transforms", record.topic());
        }
    }

    private String tooLarge(int size) {
        return "too large: the body has " + size + " bytes, RabbitMQ's max_message_size is " + brokerMaxMessageSize;
    }

    private static String missingExchange(String failure) {
        Matcher m = MISSING_EXCHANGE.matcher(failure == null ? "" : failure);
        return m.find() ? m.group(1) : null;
    }

    @Override
    public void close() {
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
