package io.outboxrelay.sink;

import java.sql.SQLException;

import org.apache.kafka.connect.source.SourceRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.outboxrelay.config.RelaySettings;
import io.outboxrelay.config.RelaySettings.FailurePolicy;
import io.outboxrelay.deadletter.DeadLetter;
import io.outboxrelay.deadletter.DeadLetterCodec;
import io.outboxrelay.deadletter.DeadLetterTable;
import io.outboxrelay.metrics.RelayMetrics;
import io.outboxrelay.transforms.OutboxHeaders;

/**
 * Decides what becomes of a refused record and, for a dead letter, writes it. Called only by the
 * {@link PublishPipeline} under its lock, for the record at the head of what is unmarked, so dead
 * letters are written in source order through one connection.
 */
final class Parking {

    private static final Logger LOG = LoggerFactory.getLogger(Parking.class);

    private final RelaySettings relay;
    private final DeadLetterTable table;
    private final RelayMetrics metrics;
    private final DeadLetterCodec codec = new DeadLetterCodec();

    Parking(RelaySettings relay, DeadLetterTable table, RelayMetrics metrics) {
        this.relay = relay;
        this.table = table;
        this.metrics = metrics;
    }

    /** Why the relay must stop instead of parking {@code p} (a {@code fail} policy), or null to park it. */
    String stopReason(Publication p) {
        if (p.refusal() == Publication.Refusal.INVALID && relay.onInvalid() == FailurePolicy.FAIL) {
            return "outbox event " + eventId(p) + " cannot be published (" + p.reason() + ") and relay.on-invalid=fail";
        }
        if (p.refusal() == Publication.Refusal.UNDELIVERABLE && relay.onUnroutable() == FailurePolicy.FAIL) {
            return "outbox event " + eventId(p) + " was refused by RabbitMQ (" + p.reason() + ") and relay.on-unroutable=fail";
        }
        return null;
    }

    /** Writes {@code p}'s dead letter; once this returns, its outcome is durable. */
    void park(Publication p) throws SQLException {
        SourceRecord record = p.event.value();
        DeadLetter letter;
        if (p.message == null) {
            letter = codec.invalidRow(record, p.reason());
        }
        else {
            letter = DeadLetterCodec.undeliverable(p.reason(), p.message.exchange(), p.message.routingKey(), p.message.properties(), p.message.body(),
                    record.topic(), record.key());
        }
        table.write(letter);
        if (p.message != null && p.reason().startsWith("unroutable")) {
            metrics.returned(p.message.exchange());
        }
        metrics.deadLettered(letter.exchange());
        LOG.atWarn().addKeyValue("event_id", letter.eventId()).addKeyValue("aggregate_id", record.key())
                .log("Outbox event {} (aggregate {}, topic {}) not delivered, {}; written to {}", letter.eventId(), record.key(), record.topic(),
                        p.reason(), table.table());
    }

    String table() {
        return table.table();
    }

    private static String eventId(Publication p) {
        return p.message != null ? p.message.messageId() : OutboxHeaders.string(p.event.value(), OutboxHeaders.MESSAGE_ID);
    }
}
