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
    private final boolean publishesLater;

    /**
     * @param publishesLater whether an event held back can still be published after later ones went (AMQP); a stream drops a
     *                       publishing id below what it stored
     */
    Parking(RelaySettings relay, DeadLetterTable table, RelayMetrics metrics, boolean publishesLater) {
        this.publishesLater = publishesLater;
        this.relay = relay;
        this.table = table;
        this.metrics = metrics;
    }

    /** Why the relay must stop instead of parking {@code p} (a {@code fail} policy), or null to park it. */
    String stopReason(MessageFate p) {
        if (p.refusal() == MessageFate.Refusal.INVALID && relay.onInvalid() == FailurePolicy.FAIL) {
            return "outbox event " + p.eventId() + " cannot be published (" + p.reason() + ") and relay.on-invalid=fail";
        }
        if (p.refusal() == MessageFate.Refusal.UNDELIVERABLE && relay.onUnroutable() == FailurePolicy.FAIL) {
            return "outbox event " + p.eventId() + " was refused by RabbitMQ (" + p.reason() + ") and relay.on-unroutable=fail";
        }
        return null;
    }

    /**
     * Writes {@code p}'s dead letter; once this returns true, its outcome is durable. False only for
     * a held event whose aggregate has nothing parked any more: it is to be published instead.
     */
    boolean park(MessageFate p) throws SQLException {
        SourceRecord record = p.event.value();
        if (p.alreadyParked) {
            LOG.info("Outbox event {} (aggregate {}) is already in {}, not re-driven: it stays there", p.eventId(), record.key(), table.table());
            return true;
        }
        DeadLetter letter;
        if (p.message == null) {
            letter = codec.invalidRow(record, p.reason());
        }
        else {
            letter = DeadLetterCodec.undeliverable(p.reason(), p.message.destination(), p.message.routingKey(), p.message.properties(), p.message.body(),
                    record.topic(), record.key());
        }
        if (p.refusal() == MessageFate.Refusal.HELD && !table.writeHeld(letter)) {
            if (publishesLater) {
                return false;
            }
            // Into a stream, later events of this producer are stored already, with higher publishing ids: published now it would
            // be dropped as a duplicate. Parked after all, it holds its aggregate again, in order, and the next redrive takes it.
            table.write(letter);
            LOG.info("Outbox event {} of aggregate {} was on its way when a redrive released its aggregate; a stream would drop it now, so it is "
                    + "parked after all and its aggregate held again until the next redrive", letter.eventId(), record.key());
        }
        else if (p.refusal() != MessageFate.Refusal.HELD) {
            table.write(letter);
        }
        if (p.message != null && p.reason().startsWith("unroutable")) {
            metrics.returned(p.message.destination());
        }
        metrics.deadLettered(letter.exchange());
        // A held event is where it should be, behind the one that was refused: that one's line is the warning.
        (p.refusal() == MessageFate.Refusal.HELD ? LOG.atInfo() : LOG.atWarn()).addKeyValue("event_id", letter.eventId()).addKeyValue("aggregate_id", record.key())
                .log("Outbox event {} (aggregate {}, topic {}) not delivered, {}; written to {}", letter.eventId(), record.key(), record.topic(),
                        p.reason(), table.table());
        return true;
    }

    String table() {
        return table.table();
    }
}
