package io.outboxrelay.transforms;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Stream;

import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.transforms.Transformation;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import io.debezium.transforms.outbox.EventRouter;
import io.outboxrelay.transforms.OutboxRows.PayloadType;

/**
 * A user who swaps Debezium's class name for ours gets the same topic, partition, key, value,
 * timestamp and headers: both routers run on identical inputs and the outputs are compared, apart
 * from the headers ours adds for the RabbitMQ sink.
 */
class EventRouterEquivalenceTest {

    private static final String ID = "0e7f3a52-6c4d-4b8e-a1f9-3d2c5b6a7e80";

    static Stream<Arguments> cases() {
        List<Map<String, String>> configs = List.of(
                Map.of(),
                Map.of("table.fields.additional.placement", "type:header:eventType,aggregatetype:header,aggregateid:envelope:aggId"),
                Map.of("route.by.field", "type", "route.topic.regex", "(?<routedByValue>.*)Created", "route.topic.replacement", "events.${routedByValue}"),
                Map.of("table.field.event.key", "aggregatetype", "table.field.event.timestamp", "occurred_at"),
                Map.of("table.expand.json.payload", "true", "table.fields.additional.placement", "type:header:type"),
                Map.of("route.tombstone.on.empty.payload", "true"),
                Map.of("table.field.event.id", "aggregateid", "table.field.event.key", ""),
                Map.of("table.field.event.payload", "body"));
        List<Arguments> cases = new ArrayList<>();
        for (Map<String, String> config : configs) {
            for (PayloadType type : PayloadType.values()) {
                cases.add(Arguments.of(config, type, "insert"));
                cases.add(Arguments.of(config, type, "read"));
                cases.add(Arguments.of(config, type, "empty"));
            }
            cases.add(Arguments.of(config, PayloadType.JSONB, "update"));
            cases.add(Arguments.of(config, PayloadType.JSONB, "delete"));
            cases.add(Arguments.of(config, PayloadType.JSONB, "tombstone"));
            cases.add(Arguments.of(config, PayloadType.JSONB, "heartbeat"));
        }
        return cases.stream();
    }

    @ParameterizedTest(name = "{0} {1} {2}")
    @MethodSource("cases")
    void sameOutputAsDebeziumsEventRouter(Map<String, String> config, PayloadType payloadType, String kind) {
        // Debezium's router adds its 'id' header to the input record, so each router gets its own copy.
        SourceRecord actual = run(new OutboxEventRouter<>(), config, input(payloadType, kind));
        SourceRecord expected;
        try {
            expected = run(new EventRouter<>(), config, input(payloadType, kind));
        }
        catch (RuntimeException debeziumFailure) {
            // Where Debezium's router throws (and stops the engine), ours flags the row for the dead-letter table.
            assertThat(OutboxHeaders.invalidReason(actual)).contains(debeziumFailure.getMessage());
            return;
        }
        String reason = actual == null ? null : OutboxHeaders.invalidReason(actual);
        if (reason != null) {
            // The one deliberate difference: Debezium passes on a payload it failed to expand as a raw
            // string (with a warning); ours flags it, since it is not the JSON it claims to be.
            assertThat(config).containsEntry("table.expand.json.payload", "true");
            assertThat(reason).contains("not valid JSON");
            assertThat(expected.value()).isInstanceOf(String.class);
            return;
        }
        if (expected == null) {
            assertThat(actual).isNull();
            return;
        }
        assertThat(actual.topic()).isEqualTo(expected.topic());
        assertThat(actual.kafkaPartition()).isEqualTo(expected.kafkaPartition());
        assertThat(actual.keySchema()).isEqualTo(expected.keySchema());
        assertThat(actual.key()).isEqualTo(expected.key());
        assertThat(actual.valueSchema()).isEqualTo(expected.valueSchema());
        assertThat(actual.value()).isEqualTo(expected.value());
        assertThat(actual.timestamp()).isEqualTo(expected.timestamp());
        assertThat(withoutSinkInstructions(actual)).isEqualTo(withoutSinkInstructions(expected));
        assertThat(actual.sourcePartition()).isEqualTo(expected.sourcePartition());
        assertThat(actual.sourceOffset()).isEqualTo(expected.sourceOffset());
    }

    private static SourceRecord run(Transformation<SourceRecord> router, Map<String, String> config, SourceRecord input) {
        router.configure(config);
        try {
            return router.apply(input);
        }
        finally {
            router.close();
        }
    }

    private static SourceRecord input(PayloadType type, String kind) {
        OutboxRows rows = new OutboxRows(type);
        Object payload = switch (type) {
            case JSONB -> "{\"total\":42,\"lines\":[1,2]}";
            case TEXT -> "[\"plain\", \"text\"]";
            case BYTEA -> "bytes".getBytes(StandardCharsets.UTF_8);
        };
        if (kind.equals("empty")) {
            payload = type == PayloadType.BYTEA ? new byte[0] : "";
        }
        Struct row = rows.row(ID, "order", "o-9", "OrderCreated", payload).put("occurred_at", 1_700_000_000_000_000L);
        Function<Struct, SourceRecord> make = switch (kind) {
            case "read" -> rows::snapshotRead;
            case "update" -> r -> rows.update(r, r);
            case "delete" -> rows::delete;
            case "tombstone" -> r -> rows.tombstone((Struct) rows.insert(r).key());
            case "heartbeat" -> r -> OutboxRows.heartbeat();
            default -> rows::insert;
        };
        return make.apply(row);
    }

    private static List<String> withoutSinkInstructions(SourceRecord record) {
        List<String> headers = new ArrayList<>();
        for (Header h : record.headers()) {
            if (!OutboxHeaders.isSinkInstruction(h.key())) {
                headers.add(h.key() + "=" + h.value() + ":" + schemaText(h.schema()));
            }
        }
        return headers;
    }

    private static String schemaText(Schema schema) {
        return schema == null ? "null" : schema.type() + "/" + schema.name();
    }
}
