package io.outboxrelay.transforms;

import java.time.OffsetDateTime;
import java.time.format.DateTimeParseException;
import java.util.Date;

import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;

import io.debezium.time.MicroTimestamp;
import io.debezium.time.NanoTimestamp;
import io.debezium.time.Timestamp;
import io.debezium.time.ZonedTimestamp;

/**
 * The event time of an outbox row in epoch milliseconds, from the column named by
 * {@code table.field.event.timestamp}. Debezium's router accepts only epoch numbers there; a
 * {@code timestamptz} column arrives as an ISO-8601 string ({@link ZonedTimestamp}) and is accepted too.
 */
final class EventTimestamp {

    private EventTimestamp() {
    }

    /** Epoch millis of {@code column} in {@code row}, or null when the column is null (the caller falls back to ts_ms). */
    static Long millis(Struct row, String column) {
        Field field = row.schema().field(column);
        if (field == null) {
            throw new InvalidOutboxEventException("table.field.event.timestamp names column '" + column + "', which the outbox table does not have");
        }
        Object value = row.get(field);
        if (value == null) {
            return null;
        }
        Schema schema = field.schema();
        String name = schema.name() == null ? "" : schema.name();
        switch (name) {
            case Timestamp.SCHEMA_NAME:
                return (Long) value;
            case MicroTimestamp.SCHEMA_NAME:
                return (Long) value / 1_000;
            case NanoTimestamp.SCHEMA_NAME:
                return (Long) value / 1_000_000;
            case org.apache.kafka.connect.data.Timestamp.LOGICAL_NAME:
                return ((Date) value).getTime();
            case ZonedTimestamp.SCHEMA_NAME:
                try {
                    return OffsetDateTime.parse((String) value).toInstant().toEpochMilli();
                }
                catch (DateTimeParseException e) {
                    throw new InvalidOutboxEventException("column '" + column + "' holds '" + value + "', which is not an ISO-8601 timestamp");
                }
            default:
                if (value instanceof Long epochMillis && name.isEmpty()) {
                    return epochMillis;
                }
                throw new InvalidOutboxEventException("column '" + column + "' (" + schema.type() + (name.isEmpty() ? "" : " " + name)
                        + ") cannot be read as a timestamp; use timestamp, timestamptz or epoch milliseconds");
        }
    }
}
