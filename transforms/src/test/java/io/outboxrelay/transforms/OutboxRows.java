package io.outboxrelay.transforms;

import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.Map;
import java.util.function.Consumer;

import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.source.SourceRecord;

import io.debezium.data.Envelope;
import io.debezium.data.Json;
import io.debezium.data.Uuid;
import io.debezium.time.MicroTimestamp;
import io.debezium.time.ZonedTimestamp;

/**
 * Change events shaped as Debezium's PostgreSQL connector emits them for an outbox table, built with
 * Debezium's own envelope and logical-type schemas.
 */
final class OutboxRows {

    static final String TOPIC = "test.public.outbox";
    static final Instant TS = Instant.parse("2026-11-21T10:15:30.123Z");

    private static final Schema SOURCE = SchemaBuilder.struct().name("io.debezium.connector.postgresql.Source")
            .field("connector", Schema.STRING_SCHEMA)
            .field("lsn", Schema.OPTIONAL_INT64_SCHEMA)
            .build();

    enum PayloadType {
        JSONB(Json.builder().optional().build()),
        TEXT(Schema.OPTIONAL_STRING_SCHEMA),
        BYTEA(Schema.OPTIONAL_BYTES_SCHEMA);

        final Schema schema;

        PayloadType(Schema schema) {
            this.schema = schema;
        }
    }

    final Schema rowSchema;
    final Envelope envelope;

    OutboxRows(PayloadType payloadType) {
        this(payloadType, b -> {
        });
    }

    /** Columns of the Debezium docs' outbox table plus Quarkus' timestamp and tracing columns; {@code extra} adds more. */
    OutboxRows(PayloadType payloadType, Consumer<SchemaBuilder> extra) {
        SchemaBuilder row = SchemaBuilder.struct().name(TOPIC + ".Value")
                .field("id", Uuid.builder().build())
                .field("aggregatetype", Schema.STRING_SCHEMA)
                .field("aggregateid", Schema.STRING_SCHEMA)
                .field("type", Schema.STRING_SCHEMA)
                .field("payload", payloadType.schema)
                .field("created_at", ZonedTimestamp.builder().optional().build())
                .field("occurred_at", MicroTimestamp.builder().optional().build())
                .field("tracingspancontext", Schema.OPTIONAL_STRING_SCHEMA);
        extra.accept(row);
        rowSchema = row.build();
        envelope = Envelope.defineSchema().withName(TOPIC + ".Envelope").withRecord(rowSchema).withSource(SOURCE).build();
    }

    Struct row(String id, String aggregateType, String aggregateId, String type, Object payload) {
        return new Struct(rowSchema)
                .put("id", id)
                .put("aggregatetype", aggregateType)
                .put("aggregateid", aggregateId)
                .put("type", type)
                .put("payload", payload instanceof byte[] b ? ByteBuffer.wrap(b) : payload);
    }

    SourceRecord insert(Struct row) {
        return record(envelope.create(row, source(), TS));
    }

    SourceRecord snapshotRead(Struct row) {
        return record(envelope.read(row, source(), TS));
    }

    SourceRecord update(Struct before, Struct after) {
        return record(envelope.update(before, after, source(), TS));
    }

    SourceRecord delete(Struct before) {
        return record(envelope.delete(before, source(), TS));
    }

    SourceRecord tombstone(Struct key) {
        return new SourceRecord(partition(), Map.of("lsn", 1L), TOPIC, null, key.schema(), key, null, null);
    }

    static SourceRecord heartbeat() {
        Schema key = SchemaBuilder.struct().name("io.debezium.connector.common.ServerNameKey").field("serverName", Schema.STRING_SCHEMA).build();
        Schema value = SchemaBuilder.struct().name("io.debezium.connector.common.Heartbeat").field("ts_ms", Schema.INT64_SCHEMA).build();
        return new SourceRecord(partition(), Map.of("lsn", 42L), "__debezium-heartbeat.test", null,
                key, new Struct(key).put("serverName", "test"), value, new Struct(value).put("ts_ms", TS.toEpochMilli()));
    }

    static SourceRecord logicalMessage() {
        Schema value = SchemaBuilder.struct().name("io.debezium.connector.postgresql.MessageValue")
                .field("op", Schema.STRING_SCHEMA)
                .field("prefix", Schema.STRING_SCHEMA)
                .build();
        return new SourceRecord(partition(), Map.of("lsn", 43L), "test.message", null, null, null, value,
                new Struct(value).put("op", "m").put("prefix", "heartbeat"));
    }

    private SourceRecord record(Struct value) {
        Schema keySchema = SchemaBuilder.struct().name(TOPIC + ".Key").field("id", Uuid.builder().build()).build();
        Struct row = value.getStruct("after") != null ? value.getStruct("after") : value.getStruct("before");
        return new SourceRecord(partition(), Map.of("lsn", 7L), TOPIC, null, keySchema, new Struct(keySchema).put("id", row.get("id")),
                envelope.schema(), value);
    }

    private static Struct source() {
        return new Struct(SOURCE).put("connector", "postgresql").put("lsn", 7L);
    }

    private static Map<String, ?> partition() {
        return Map.of("server", "test");
    }
}
