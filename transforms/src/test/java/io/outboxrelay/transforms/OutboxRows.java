package io.outboxrelay.transforms;

import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

import org.apache.kafka.connect.data.Field;
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
 * Debezium's own envelope and logical-type schemas; and the other records a connector or an earlier
 * transform hands on.
 */
final class OutboxRows {

    static final String TOPIC = "test.public.outbox";
    static final Instant TS = Instant.parse("2026-11-21T10:15:30.123Z");

    private static final Schema SOURCE = SchemaBuilder.struct().name("io.debezium.connector.postgresql.Source")
            .field("connector", Schema.STRING_SCHEMA)
            .field("lsn", Schema.OPTIONAL_INT64_SCHEMA)
            .build();

    /** The payload column's type, as PostgreSQL's connector maps it (json and jsonb share one logical type). */
    enum PayloadType {
        JSONB(Json.builder().optional().build()),
        JSON(Json.builder().optional().build()),
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
        this(Map.of(), payloadType, extra);
    }

    /** As {@link #OutboxRows(PayloadType, Consumer)}, with {@code types} replacing the types of the columns it names. */
    OutboxRows(Map<String, Schema> types, PayloadType payloadType, Consumer<SchemaBuilder> extra) {
        Map<String, Schema> columns = new LinkedHashMap<>();
        columns.put("id", Uuid.builder().build());
        columns.put("aggregatetype", Schema.STRING_SCHEMA);
        columns.put("aggregateid", Schema.STRING_SCHEMA);
        columns.put("type", Schema.STRING_SCHEMA);
        columns.put("payload", payloadType.schema);
        columns.put("created_at", ZonedTimestamp.builder().optional().build());
        columns.put("occurred_at", MicroTimestamp.builder().optional().build());
        columns.put("tracingspancontext", Schema.OPTIONAL_STRING_SCHEMA);
        types.forEach((column, type) -> {
            if (columns.replace(column, type) == null) {
                throw new IllegalArgumentException("no column " + column);
            }
        });
        // Optional, as Debezium's connectors declare it: an envelope's 'before' and 'after' may be null.
        SchemaBuilder row = SchemaBuilder.struct().name(TOPIC + ".Value").optional();
        columns.forEach(row::field);
        extra.accept(row);
        rowSchema = row.build();
        envelope = Envelope.defineSchema().withName(TOPIC + ".Envelope").withRecord(rowSchema).withSource(SOURCE).build();
    }

    /** A row; byte arrays go in as the ByteBuffers Debezium emits for bytea. */
    Struct row(Object id, String aggregateType, Object aggregateId, Object type, Object payload) {
        return put(put(put(put(put(new Struct(rowSchema), "id", id), "aggregatetype", aggregateType), "aggregateid", aggregateId), "type", type),
                "payload", payload);
    }

    /** Puts {@code value} in {@code column}, a byte array as a ByteBuffer. */
    static Struct put(Struct row, String column, Object value) {
        return row.put(column, value instanceof byte[] b ? ByteBuffer.wrap(b) : value);
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

    /** A value under a named envelope schema that is not a Struct: a broken record, which Debezium's router refuses. */
    SourceRecord envelopeWithoutStruct() {
        return new SourceRecord(partition(), Map.of("lsn", 2L), TOPIC, null, null, null, envelope.schema(), "not a struct");
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

    /** A Struct under a schema with no name, as an earlier transform (HoistField, a custom one) or a custom source hands it on. */
    static SourceRecord unnamedStruct() {
        Schema value = SchemaBuilder.struct().field("op", Schema.STRING_SCHEMA).field("after", Schema.OPTIONAL_STRING_SCHEMA).build();
        return new SourceRecord(partition(), Map.of("lsn", 44L), "custom", null, null, null, value, new Struct(value).put("op", "c").put("after", "x"));
    }

    /** A Struct with no value schema on the record at all. */
    static SourceRecord structWithoutSchema() {
        Schema value = SchemaBuilder.struct().field("op", Schema.STRING_SCHEMA).build();
        return new SourceRecord(partition(), Map.of("lsn", 45L), "custom", null, null, null, null, new Struct(value).put("op", "c"));
    }

    /** A plain string value under an unnamed string schema. */
    static SourceRecord stringValue() {
        return new SourceRecord(partition(), Map.of("lsn", 46L), "custom", null, null, null, Schema.STRING_SCHEMA, "hello");
    }

    /** A schemaless map value, as a JSON converter without schemas hands it on. */
    static SourceRecord schemalessMap() {
        return new SourceRecord(partition(), Map.of("lsn", 47L), "custom", null, null, null, null, Map.of("op", "c"));
    }

    private SourceRecord record(Struct value) {
        Field id = rowSchema.field("id");
        Schema keySchema = SchemaBuilder.struct().name(TOPIC + ".Key").field("id", id.schema()).build();
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
