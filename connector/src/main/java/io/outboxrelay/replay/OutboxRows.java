package io.outboxrelay.replay;

import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Timestamp;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;

import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.source.SourceRecord;

import io.debezium.data.Envelope;

/**
 * Outbox rows read with plain SQL, turned into the change records Debezium's PostgreSQL connector
 * would have made of their inserts (an {@link Envelope} with {@code op=c} and the row as
 * {@code after}, column types as the connector maps them), so that the relay's own transform chain
 * and message mapping route them exactly as the stream did. Written by hand because Debezium builds
 * these records only from decoded WAL, never from a query.
 */
final class OutboxRows {

    private final String topic;
    private final String schemaName;
    private final String tableName;
    private final Schema rowSchema;
    private final Envelope envelope;
    private final Schema sourceSchema;
    private final List<Column> columns;

    private record Column(String name, String type, Schema schema) {
    }

    private OutboxRows(String topic, String schemaName, String tableName, List<Column> columns) {
        this.topic = topic;
        this.schemaName = schemaName;
        this.tableName = tableName;
        this.columns = columns;
        SchemaBuilder row = SchemaBuilder.struct().name(topic + ".Value").optional();
        columns.forEach(c -> row.field(c.name(), c.schema()));
        this.rowSchema = row.build();
        this.sourceSchema = SchemaBuilder.struct().name("io.debezium.connector.postgresql.Source")
                .field("connector", Schema.STRING_SCHEMA).field("db", Schema.STRING_SCHEMA).field("schema", Schema.STRING_SCHEMA)
                .field("table", Schema.STRING_SCHEMA).field("ts_ms", Schema.INT64_SCHEMA).build();
        this.envelope = Envelope.defineSchema().withName(topic + ".Envelope").withRecord(rowSchema).withSource(sourceSchema).build();
    }

    /** The shape of {@code rs}'s rows, for {@code schema.table}, as the stream names its topic ({@code prefix.schema.table}). */
    static OutboxRows of(ResultSetMetaData meta, String topicPrefix, String schema, String table) throws SQLException {
        List<Column> columns = new ArrayList<>();
        for (int i = 1; i <= meta.getColumnCount(); i++) {
            columns.add(new Column(meta.getColumnName(i), meta.getColumnTypeName(i), schemaFor(meta.getColumnTypeName(i))));
        }
        return new OutboxRows(topicPrefix + "." + schema + "." + table, schema, table, columns);
    }

    /** The connector's mapping of the types an outbox table uses; any other type is read as text. */
    private static Schema schemaFor(String type) {
        return switch (type) {
            case "uuid" -> SchemaBuilder.string().name("io.debezium.data.Uuid").optional().build();
            case "json", "jsonb" -> SchemaBuilder.string().name("io.debezium.data.Json").optional().build();
            case "timestamptz" -> SchemaBuilder.string().name("io.debezium.time.ZonedTimestamp").optional().build();
            case "timestamp" -> SchemaBuilder.int64().name("io.debezium.time.MicroTimestamp").optional().build();
            case "int2" -> Schema.OPTIONAL_INT16_SCHEMA;
            case "int4" -> Schema.OPTIONAL_INT32_SCHEMA;
            case "int8" -> Schema.OPTIONAL_INT64_SCHEMA;
            case "bool" -> Schema.OPTIONAL_BOOLEAN_SCHEMA;
            case "float4" -> Schema.OPTIONAL_FLOAT32_SCHEMA;
            case "float8" -> Schema.OPTIONAL_FLOAT64_SCHEMA;
            case "bytea" -> Schema.OPTIONAL_BYTES_SCHEMA;
            default -> Schema.OPTIONAL_STRING_SCHEMA;
        };
    }

    /** The insert record of the current row of {@code rs}. */
    SourceRecord record(ResultSet rs) throws SQLException {
        Struct row = new Struct(rowSchema);
        for (int i = 0; i < columns.size(); i++) {
            Column c = columns.get(i);
            row.put(c.name(), value(rs, i + 1, c.type()));
        }
        Instant now = Instant.now();
        Struct source = new Struct(sourceSchema).put("connector", "postgresql").put("db", "replay").put("schema", schemaName).put("table", tableName)
                .put("ts_ms", now.toEpochMilli());
        return new SourceRecord(null, null, topic, null, null, null, envelope.schema(), envelope.create(row, source, now), now.toEpochMilli());
    }

    private static Object value(ResultSet rs, int i, String type) throws SQLException {
        Object v = switch (type) {
            case "timestamptz" -> {
                OffsetDateTime t = rs.getObject(i, OffsetDateTime.class);
                yield t == null ? null : t.withOffsetSameInstant(ZoneOffset.UTC).format(DateTimeFormatter.ISO_OFFSET_DATE_TIME);
            }
            case "timestamp" -> {
                Timestamp t = rs.getTimestamp(i);
                yield t == null ? null : t.toInstant().getEpochSecond() * 1_000_000 + t.getNanos() / 1_000;
            }
            case "int2" -> rs.getShort(i);
            case "int4" -> rs.getInt(i);
            case "int8" -> rs.getLong(i);
            case "bool" -> rs.getBoolean(i);
            case "float4" -> rs.getFloat(i);
            case "float8" -> rs.getDouble(i);
            case "bytea" -> rs.getBytes(i);
            default -> rs.getString(i);
        };
        return rs.wasNull() ? null : v;
    }
}
