package io.outboxrelay.transforms;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiFunction;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.stream.Stream;

import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.header.ConnectHeaders;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.transforms.ExtractField;
import org.apache.kafka.connect.transforms.HoistField;
import org.apache.kafka.connect.transforms.Transformation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import io.debezium.data.Uuid;
import io.debezium.transforms.outbox.EventRouter;
import io.outboxrelay.transforms.OutboxRows.PayloadType;

/**
 * A user who swaps Debezium's class name for ours gets Debezium's output, record for record: both
 * routers run on identical inputs, and whole records are compared, headers included. With Debezium's
 * keys alone ({@link Mode#DEBEZIUM}) the outcome is the same, failures included; with
 * {@code invalid.message.behavior=flag} what Debezium's router throws for is flagged instead; and in
 * the relay's configuration the record is Debezium's with only the AMQP headers appended.
 */
class EventRouterEquivalenceTest {

    private static final String ID = "0e7f3a52-6c4d-4b8e-a1f9-3d2c5b6a7e80";
    private static final long OCCURRED_MICROS = 1_700_000_000_123_456L;
    private static final byte[] BYTES_ID = { 1, 2, (byte) 0xff };

    /** How ours is configured beside Debezium's keys. */
    enum Mode {
        /** Debezium's keys alone. */
        DEBEZIUM(Map.of()),
        /** Debezium's keys, and what Debezium's router throws for flagged instead. */
        FLAG(Map.of("invalid.message.behavior", "flag")),
        /** As outbox-relay builds its chain. */
        RELAY(Map.of("amqp.headers.enabled", "true", "invalid.message.behavior", "flag"));

        final Map<String, String> props;

        Mode(Map<String, String> props) {
            this.props = props;
        }
    }

    /** An outbox table with the column types Debezium's documentation allows, and the values of one row. */
    record Table(String name, Map<String, Schema> types, PayloadType payloadType, Object id, Object key, Object type, Object payload,
            Object emptyPayload) {

        OutboxRows rows() {
            return new OutboxRows(types, payloadType, b -> b.field("shard", Schema.OPTIONAL_INT32_SCHEMA).field("version", Schema.OPTIONAL_INT32_SCHEMA));
        }

        Struct row(OutboxRows rows, Object payload) {
            return rows.row(id, "order", key, type, payload).put("occurred_at", OCCURRED_MICROS).put("shard", 3).put("version", 2);
        }

        @Override
        public String toString() {
            return name;
        }
    }

    record Input(String name, Supplier<SourceRecord> make) {
        @Override
        public String toString() {
            return name;
        }
    }

    record Config(String name, Map<String, String> props) {
        @Override
        public String toString() {
            return name;
        }
    }

    private static final String JSON = "{\"total\":42,\"lines\":[1,2]}";
    private static final byte[] TYPE_BYTES = "OrderCreated".getBytes(StandardCharsets.UTF_8);

    static List<Table> tables() {
        Schema uuid = Uuid.builder().build();
        return List.of(
                new Table("uuid id, text key, jsonb payload", Map.of(), PayloadType.JSONB, ID, "o-9", "OrderCreated", JSON, ""),
                new Table("json payload", Map.of(), PayloadType.JSON, ID, "o-9", "OrderCreated", JSON, ""),
                new Table("text payload", Map.of(), PayloadType.TEXT, ID, "o-9", "OrderCreated", "[\"plain\", \"text\"]", "  "),
                new Table("bytea payload", Map.of(), PayloadType.BYTEA, ID, "o-9", "OrderCreated", "bytes".getBytes(StandardCharsets.UTF_8), new byte[0]),
                new Table("text id", Map.of("id", Schema.STRING_SCHEMA), PayloadType.JSONB, "evt-1", "o-9", "OrderCreated", JSON, ""),
                new Table("bigint id", Map.of("id", Schema.INT64_SCHEMA), PayloadType.JSONB, 42L, "o-9", "OrderCreated", JSON, ""),
                new Table("bytea id", Map.of("id", Schema.BYTES_SCHEMA), PayloadType.JSONB, BYTES_ID, "o-9", "OrderCreated", JSON, ""),
                new Table("uuid key", Map.of("aggregateid", uuid), PayloadType.JSONB, ID, "5f0c6a5e-8d1b-4c3e-9a57-2b7f1e0d9c41", "OrderCreated", JSON, ""),
                new Table("int key", Map.of("aggregateid", Schema.INT32_SCHEMA), PayloadType.JSONB, ID, 9, "OrderCreated", JSON, ""),
                new Table("bytea key", Map.of("aggregateid", Schema.BYTES_SCHEMA), PayloadType.JSONB, ID, new byte[] { 9 }, "OrderCreated", JSON, ""),
                new Table("bytea type", Map.of("type", Schema.BYTES_SCHEMA), PayloadType.JSONB, ID, "o-9", TYPE_BYTES, JSON, ""),
                new Table("null key and type", Map.of("aggregateid", Schema.OPTIONAL_STRING_SCHEMA, "type", Schema.OPTIONAL_STRING_SCHEMA),
                        PayloadType.JSONB, ID, null, null, JSON, ""));
    }

    static List<Config> configs() {
        return List.of(
                new Config("defaults", Map.of()),
                new Config("placements in header and envelope",
                        Map.of("table.fields.additional.placement", "type:header:eventType,aggregatetype:header,aggregateid:envelope:aggId")),
                new Config("partition placement", Map.of("table.fields.additional.placement", "shard:partition,type:header")),
                new Config("route.by.field and route.topic.regex",
                        Map.of("route.by.field", "type", "route.topic.regex", "(?<routedByValue>.*)Created", "route.topic.replacement", "events.${routedByValue}")),
                new Config("route.topic.regex not matching", Map.of("route.topic.regex", "(?<routedByValue>customer)")),
                new Config("event key and timestamp columns", Map.of("table.field.event.key", "aggregatetype", "table.field.event.timestamp", "occurred_at")),
                new Config("expand.json.payload", Map.of("table.expand.json.payload", "true", "table.fields.additional.placement", "type:header:type")),
                new Config("expand.json.payload in an envelope", Map.of("table.expand.json.payload", "true", "table.fields.additional.placement", "aggregateid:envelope")),
                new Config("tombstone on empty payload", Map.of("route.tombstone.on.empty.payload", "true")),
                new Config("event id from another column", Map.of("table.field.event.id", "aggregatetype", "table.field.event.key", "")),
                new Config("schema version", Map.of("table.field.event.schema.version", "version", "table.fields.additional.placement", "aggregateid:envelope:aggId")),
                new Config("payload column missing", Map.of("table.field.event.payload", "body")),
                new Config("event id column missing", Map.of("table.field.event.id", "event_id")),
                new Config("event key column missing", Map.of("table.field.event.key", "aggregate_id")),
                new Config("route.by.field column missing", Map.of("route.by.field", "aggregate_type")),
                new Config("placement column missing", Map.of("table.fields.additional.placement", "tenant:header")),
                new Config("placement column missing, ignored", Map.of("table.fields.additional.placement", "tenant:header", "table.field.additional.missing", "ignore")),
                new Config("updates fatal", Map.of("table.op.invalid.behavior", "fatal")));
    }

    static List<Input> inputs() {
        List<Input> inputs = new ArrayList<>();
        for (Table table : tables()) {
            inputs.add(rowInput(table, "insert", t -> t.payload(), OutboxRows::insert));
            inputs.add(rowInput(table, "empty payload", t -> t.emptyPayload(), OutboxRows::insert));
            inputs.add(rowInput(table, "null payload", t -> null, OutboxRows::insert));
            if (table.payloadType() != PayloadType.BYTEA) {
                inputs.add(rowInput(table, "payload not JSON", t -> "{not json", OutboxRows::insert));
            }
        }
        Table table = tables().get(0);
        inputs.add(rowInput(table, "snapshot read", Table::payload, OutboxRows::snapshotRead));
        inputs.add(rowInput(table, "update", Table::payload, (rows, row) -> rows.update(row, row)));
        inputs.add(rowInput(table, "delete", Table::payload, OutboxRows::delete));
        inputs.add(rowInput(table, "tombstone", Table::payload, (rows, row) -> rows.tombstone((Struct) rows.insert(row).key())));
        inputs.add(new Input("envelope schema, value not a Struct", () -> table.rows().envelopeWithoutStruct()));
        inputs.add(new Input("heartbeat", OutboxRows::heartbeat));
        inputs.add(new Input("logical message", OutboxRows::logicalMessage));
        inputs.add(new Input("Struct under an unnamed schema", OutboxRows::unnamedStruct));
        inputs.add(new Input("Struct with no value schema", OutboxRows::structWithoutSchema));
        inputs.add(new Input("string value", OutboxRows::stringValue));
        inputs.add(new Input("schemaless map", OutboxRows::schemalessMap));
        return inputs;
    }

    private static Input rowInput(Table table, String kind, Function<Table, Object> payload,
            BiFunction<OutboxRows, Struct, SourceRecord> make) {
        return new Input(table + ": " + kind, () -> {
            OutboxRows rows = table.rows();
            return make.apply(rows, table.row(rows, payload.apply(table)));
        });
    }

    static Stream<Arguments> cases() {
        List<Arguments> cases = new ArrayList<>();
        List<Input> inputs = inputs();
        for (Config config : configs()) {
            for (Mode mode : Mode.values()) {
                for (Input input : inputs) {
                    cases.add(Arguments.of(config, mode, input));
                }
            }
        }
        return cases.stream();
    }

    /** What a router made of one input: the record or the exception, and the input (each router gets its own: Debezium's adds a header to it). */
    record Outcome(SourceRecord input, SourceRecord output, RuntimeException failure) {
    }

    @ParameterizedTest(name = "{0} | {1} | {2}")
    @MethodSource("cases")
    void sameRecordAsDebeziumsEventRouter(Config config, Mode mode, Input input) {
        Outcome expected = run(new EventRouter<>(), config.props(), input.make().get());
        Map<String, String> ours = new HashMap<>(config.props());
        ours.putAll(mode.props);
        Outcome actual = run(new OutboxEventRouter<>(), ours, input.make().get());
        Struct row = InsertedRow.of(actual.input());

        if (expected.failure() != null && (mode == Mode.DEBEZIUM || row == null)) {
            assertThat(actual.failure()).as("Debezium's own exception").isNotNull()
                    .isExactlyInstanceOf(expected.failure().getClass()).hasMessage(expected.failure().getMessage());
            return;
        }
        assertThat(actual.failure()).isNull();
        if (expected.failure() != null) {
            assertFlagged(actual, row, expected.failure().getMessage() == null ? "unknown error" : expected.failure().getMessage(), mode, config);
            return;
        }
        if (mode != Mode.RELAY) {
            assertThat(actual.output()).isEqualTo(expected.output());
            assertThat(actual.output() == actual.input()).as("passed through as the same record").isEqualTo(expected.output() == expected.input());
            return;
        }
        String reason = actual.output() == null ? null : OutboxHeaders.invalidReason(actual.output());
        if (reason != null) {
            // The relay's own checks: a message needs an id and a body, and a payload that claims to be JSON must be.
            assertThat(reason).matches("the (event id|payload) column '\\w+' is null|the payload column '\\w+' is (not valid JSON|empty).*");
            assertFlagged(actual, row, reason, mode, config);
            return;
        }
        assertSameApartFromAmqpHeaders(actual.output(), expected.output());
        if (row != null && expected.output() != null) {
            assertThat(OutboxHeaders.string(actual.output(), OutboxHeaders.MESSAGE_ID)).isNotNull();
        }
    }

    /** On its source topic, the row as its value, the reason in a header, and no AMQP header unless the relay asked for them. */
    private static void assertFlagged(Outcome actual, Struct row, String reason, Mode mode, Config config) {
        SourceRecord flagged = actual.output();
        assertThat(OutboxHeaders.invalidReason(flagged)).isEqualTo(reason);
        assertThat(flagged.topic()).isEqualTo(actual.input().topic());
        assertThat(flagged.value()).isEqualTo(row);
        assertThat(flagged.valueSchema()).isEqualTo(row.schema());
        assertThat(flagged.sourceOffset()).isEqualTo(actual.input().sourceOffset());
        if (mode == Mode.RELAY) {
            // The dead-letter table names the event by it, when the row has one.
            String idColumn = config.props().getOrDefault("table.field.event.id", "id");
            Object id = row.schema().field(idColumn) == null ? null : row.get(idColumn);
            assertThat(OutboxHeaders.string(flagged, OutboxHeaders.MESSAGE_ID)).isEqualTo(ColumnText.of(id));
        }
        else {
            assertThat(headerKeys(flagged)).noneMatch(k -> k.startsWith("amqp."));
        }
    }

    /** Debezium's headers first and unchanged, then only the AMQP ones; everything else the same. */
    private static void assertSameApartFromAmqpHeaders(SourceRecord actual, SourceRecord expected) {
        if (expected == null) {
            assertThat(actual).isNull();
            return;
        }
        List<Header> ours = new ArrayList<>();
        actual.headers().forEach(ours::add);
        List<Header> debeziums = new ArrayList<>();
        expected.headers().forEach(debeziums::add);
        assertThat(ours.subList(0, Math.min(ours.size(), debeziums.size()))).isEqualTo(debeziums);
        assertThat(ours.subList(debeziums.size(), ours.size())).allMatch(h -> OutboxHeaders.isSinkInstruction(h.key()) || h.key().equals(OutboxHeaders.TRACEPARENT));
        ConnectHeaders debeziumsOnly = new ConnectHeaders();
        debeziums.forEach(debeziumsOnly::add);
        assertThat(actual.newRecord(actual.topic(), actual.kafkaPartition(), actual.keySchema(), actual.key(), actual.valueSchema(), actual.value(),
                actual.timestamp(), debeziumsOnly)).isEqualTo(expected);
    }

    /** Transforms that may come before the router in a chain, and hand on something that is no change event. */
    enum Earlier {
        /** Wraps the envelope in a Struct whose schema has no name. */
        HOIST_FIELD(() -> new HoistField.Value<>(), Map.of("field", "event")),
        /** Hands on the row, under the row's schema. */
        EXTRACT_AFTER(() -> new ExtractField.Value<>(), Map.of("field", "after"));

        private final Supplier<Transformation<SourceRecord>> type;
        private final Map<String, String> props;

        Earlier(Supplier<Transformation<SourceRecord>> type, Map<String, String> props) {
            this.type = type;
            this.props = props;
        }

        SourceRecord apply(SourceRecord record) {
            Transformation<SourceRecord> t = type.get();
            t.configure(props);
            try {
                return t.apply(record);
            }
            finally {
                t.close();
            }
        }
    }

    static Stream<Arguments> chains() {
        List<Arguments> chains = new ArrayList<>();
        for (Earlier earlier : Earlier.values()) {
            for (Mode mode : Mode.values()) {
                chains.add(Arguments.of(earlier, mode));
            }
        }
        return chains.stream();
    }

    @ParameterizedTest(name = "{0} | {1}")
    @MethodSource("chains")
    void whatAnEarlierTransformHandsOnIsPassedThroughUntouched(Earlier earlier, Mode mode) {
        Table table = tables().get(0);
        OutboxRows rows = table.rows();
        SourceRecord handedOn = earlier.apply(rows.insert(table.row(rows, JSON)));
        assertThat(handedOn.valueSchema().name()).isNotEqualTo(rows.envelope.schema().name());
        if (earlier == Earlier.HOIST_FIELD) {
            assertThat(handedOn.valueSchema().name()).isNull();
        }

        Outcome expected = run(new EventRouter<>(), Map.of(), handedOn);
        Outcome actual = run(new OutboxEventRouter<>(), mode.props, handedOn);
        assertThat(expected.output()).isSameAs(handedOn);
        assertThat(actual.failure()).isNull();
        assertThat(actual.output()).isSameAs(handedOn).isEqualTo(expected.output());
        assertThat(handedOn.headers()).isEmpty();
    }

    /**
     * The one difference on Debezium's keys: event timestamp columns Debezium's router refuses (it
     * reads epoch numbers with a Debezium logical type only) are read too. Everything but the timestamp
     * is what Debezium's router makes of the row without that key.
     */
    @Test
    void timestampColumnsDebeziumRefusesAreRead() {
        Instant at = Instant.parse("2026-11-20T07:00:00.250Z");
        Map<String, Object> columns = Map.of(
                "created_at", "2026-11-20T08:00:00.250+01:00",
                "epoch_ms", at.toEpochMilli(),
                "connect_ts", java.util.Date.from(at));
        for (Map.Entry<String, Object> column : columns.entrySet()) {
            Table table = tables().get(0);
            Supplier<SourceRecord> input = () -> {
                OutboxRows rows = new OutboxRows(Map.of(), PayloadType.JSONB, b -> b.field("epoch_ms", Schema.OPTIONAL_INT64_SCHEMA)
                        .field("connect_ts", org.apache.kafka.connect.data.Timestamp.builder().optional().build()));
                return rows.insert(rows.row(ID, "order", "o-9", "OrderCreated", JSON).put(column.getKey(), column.getValue()));
            };
            Map<String, String> config = Map.of("table.field.event.timestamp", column.getKey());
            assertThat(run(new EventRouter<>(), config, input.get()).failure()).as(column.getKey()).isNotNull();
            SourceRecord withoutKey = run(new EventRouter<>(), Map.of(), input.get()).output();
            SourceRecord ours = run(new OutboxEventRouter<>(), config, input.get()).output();
            assertThat(ours.timestamp()).as(column.getKey()).isEqualTo(at.toEpochMilli());
            assertThat(ours.newRecord(ours.topic(), ours.kafkaPartition(), ours.keySchema(), ours.key(), ours.valueSchema(), ours.value(),
                    withoutKey.timestamp(), ours.headers())).isEqualTo(withoutKey);
        }
    }

    @Test
    void aTimestampColumnOfAnotherTypeFailsNamingTheSetting() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        Map<String, String> config = Map.of("table.field.event.timestamp", "tracingspancontext");
        Struct row = rows.row(ID, "order", "o-9", "OrderCreated", JSON).put("tracingspancontext", "yesterday");
        assertThat(run(new EventRouter<>(), config, rows.insert(row)).failure()).isNotNull();
        assertThat(run(new OutboxEventRouter<>(), config, rows.insert(row)).failure()).isInstanceOf(InvalidOutboxEventException.class)
                .hasMessageContaining("'tracingspancontext'").hasMessageContaining("cannot be read as a timestamp");
        SourceRecord flagged = run(new OutboxEventRouter<>(), Map.of("table.field.event.timestamp", "tracingspancontext", "invalid.message.behavior", "flag"),
                rows.insert(row)).output();
        assertThat(OutboxHeaders.invalidReason(flagged)).contains("cannot be read as a timestamp");
    }

    private static Outcome run(Transformation<SourceRecord> router, Map<String, String> config, SourceRecord input) {
        router.configure(config);
        try {
            return new Outcome(input, router.apply(input), null);
        }
        catch (RuntimeException e) {
            return new Outcome(input, null, e);
        }
        finally {
            router.close();
        }
    }

    private static List<String> headerKeys(SourceRecord record) {
        List<String> keys = new ArrayList<>();
        record.headers().forEach(h -> keys.add(h.key()));
        return keys;
    }
}
