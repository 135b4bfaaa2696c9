package io.outboxrelay.transforms;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.HashMap;
import java.util.Map;

import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.source.SourceRecord;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import io.outboxrelay.transforms.OutboxRows.PayloadType;

class OutboxEventRouterTest {

    private static final String ID = "5f0c6a5e-8d1b-4c3e-9a57-2b7f1e0d9c41";
    private final OutboxEventRouter<SourceRecord> router = new OutboxEventRouter<>();

    /** Configured as outbox-relay configures it (AMQP headers, invalid rows flagged), plus {@code keyValues}. */
    private OutboxEventRouter<SourceRecord> configured(String... keyValues) {
        Map<String, String> props = new HashMap<>(Map.of("amqp.headers.enabled", "true", "invalid.message.behavior", "flag"));
        return configuredWith(props, keyValues);
    }

    /** Configured with {@code keyValues} alone, as a Kafka Connect user swapping Debezium's class for ours would. */
    private OutboxEventRouter<SourceRecord> debeziumKeysOnly(String... keyValues) {
        return configuredWith(new HashMap<>(), keyValues);
    }

    private OutboxEventRouter<SourceRecord> configuredWith(Map<String, String> props, String... keyValues) {
        for (int i = 0; i < keyValues.length; i += 2) {
            props.put(keyValues[i], keyValues[i + 1]);
        }
        router.configure(props);
        return router;
    }

    @AfterEach
    void close() {
        router.close();
    }

    private static String header(SourceRecord r, String key) {
        return OutboxHeaders.string(r, key);
    }

    @Test
    void jsonbInsertBecomesAMessageWithPlainIdTypeAndJsonContentType() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        SourceRecord out = configured().apply(rows.insert(rows.row(ID, "order", "o-1", "OrderCreated", "{\"total\":42}")));

        assertThat(out.topic()).isEqualTo("outbox.event.order");
        assertThat(out.key()).isEqualTo("o-1");
        assertThat(out.value()).isEqualTo("{\"total\":42}");
        assertThat(header(out, OutboxHeaders.MESSAGE_ID)).isEqualTo(ID);
        assertThat(header(out, OutboxHeaders.TYPE)).isEqualTo("OrderCreated");
        assertThat(header(out, OutboxHeaders.CONTENT_TYPE)).isEqualTo("application/json");
        assertThat(out.headers().lastWithName("id").value()).as("Debezium's own id header stays").isEqualTo(ID);
        assertThat(out.timestamp()).as("no timestamp column: the commit time (ts_ms)").isEqualTo(OutboxRows.TS.toEpochMilli());
        assertThat(OutboxHeaders.isOutboxEvent(out)).isTrue();
        assertThat(OutboxHeaders.invalidReason(out)).isNull();
    }

    @Test
    void textAndByteaPayloadsGetTheirContentTypes() {
        OutboxRows text = new OutboxRows(PayloadType.TEXT);
        SourceRecord t = configured().apply(text.insert(text.row(ID, "order", "o-1", "Note", "hello")));
        assertThat(t.value()).isEqualTo("hello");
        assertThat(header(t, OutboxHeaders.CONTENT_TYPE)).isEqualTo("text/plain; charset=utf-8");

        OutboxRows bytea = new OutboxRows(PayloadType.BYTEA);
        SourceRecord b = router.apply(bytea.insert(bytea.row(ID, "order", "o-1", "Blob", new byte[] {1, 2, 3})));
        assertThat(b.value()).isEqualTo(ByteBuffer.wrap(new byte[] {1, 2, 3}));
        assertThat(header(b, OutboxHeaders.CONTENT_TYPE)).isEqualTo("application/octet-stream");
    }

    @Test
    void contentTypeCanBeFixed() {
        OutboxRows rows = new OutboxRows(PayloadType.TEXT);
        SourceRecord out = configured("content.type", "application/vnd.acme+json").apply(rows.insert(rows.row(ID, "order", "o-1", "T", "{}")));
        assertThat(header(out, OutboxHeaders.CONTENT_TYPE)).isEqualTo("application/vnd.acme+json");
    }

    @Test
    void snapshotReadIsRoutedLikeAnInsert() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        SourceRecord out = configured().apply(rows.snapshotRead(rows.row(ID, "order", "o-1", "OrderCreated", "{}")));
        assertThat(header(out, OutboxHeaders.MESSAGE_ID)).isEqualTo(ID);
    }

    @Test
    void updatesDeletesAndTombstonesAreDroppedAsDebeziumDoes() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        Struct row = rows.row(ID, "order", "o-1", "OrderCreated", "{}");
        configured();
        assertThat(router.apply(rows.update(row, row))).isNull();
        assertThat(router.apply(rows.delete(row))).isNull();
        assertThat(router.apply(rows.tombstone((Struct) rows.insert(row).key()))).isNull();
    }

    @Test
    void updateFailsWhenDebeziumsInvalidOperationBehaviorIsFatal() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        Struct row = rows.row(ID, "order", "o-1", "OrderCreated", "{}");
        configured("table.op.invalid.behavior", "fatal");
        assertThatThrownBy(() -> router.apply(rows.update(row, row))).isInstanceOf(IllegalStateException.class);
    }

    @Test
    void heartbeatsAndLogicalMessagesPassUntouchedAndRecognisably() {
        configured();
        SourceRecord heartbeat = OutboxRows.heartbeat();
        SourceRecord message = OutboxRows.logicalMessage();
        assertThat(router.apply(heartbeat)).isSameAs(heartbeat);
        assertThat(router.apply(message)).isSameAs(message);
        assertThat(heartbeat.headers()).isEmpty();
        assertThat(OutboxHeaders.isOutboxEvent(heartbeat)).isFalse();
        assertThat(OutboxHeaders.isOutboxEvent(message)).isFalse();
    }

    @Test
    void timestamptzColumnSetsTheTimestamp() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        Struct row = rows.row(ID, "order", "o-1", "T", "{}").put("created_at", "2026-11-20T08:00:00.250+01:00");
        SourceRecord out = configured("table.field.event.timestamp", "created_at").apply(rows.insert(row));
        assertThat(out.timestamp()).isEqualTo(Instant.parse("2026-11-20T07:00:00.250Z").toEpochMilli());
    }

    @Test
    void microTimestampColumnSetsTheTimestampAndNullFallsBackToCommitTime() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        configured("table.field.event.timestamp", "occurred_at");
        Struct row = rows.row(ID, "order", "o-1", "T", "{}").put("occurred_at", 1_700_000_000_123_456L);
        assertThat(router.apply(rows.insert(row)).timestamp()).isEqualTo(1_700_000_000_123L);
        Struct withoutTime = rows.row(ID, "order", "o-1", "T", "{}");
        assertThat(router.apply(rows.insert(withoutTime)).timestamp()).isEqualTo(OutboxRows.TS.toEpochMilli());
    }

    @Test
    void correlationIdAndTraceparentComeFromTheirColumns() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB, b -> b.field("correlation", Schema.OPTIONAL_STRING_SCHEMA));
        configured("table.field.event.correlation.id", "correlation");
        String traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

        Struct quarkusStyle = rows.row(ID, "order", "o-1", "T", "{}").put("correlation", "req-7")
                .put("tracingspancontext", "#Properties\ntraceparent=" + traceparent + "\ntracestate=x\n");
        SourceRecord a = router.apply(rows.insert(quarkusStyle));
        assertThat(header(a, OutboxHeaders.CORRELATION_ID)).isEqualTo("req-7");
        assertThat(header(a, OutboxHeaders.TRACEPARENT)).isEqualTo(traceparent);

        Struct plain = rows.row(ID, "order", "o-1", "T", "{}").put("tracingspancontext", traceparent);
        SourceRecord b = router.apply(rows.insert(plain));
        assertThat(header(b, OutboxHeaders.TRACEPARENT)).isEqualTo(traceparent);
        assertThat(header(b, OutboxHeaders.CORRELATION_ID)).isNull();

        Struct none = rows.row(ID, "order", "o-1", "T", "{}").put("tracingspancontext", "garbage");
        assertThat(header(router.apply(rows.insert(none)), OutboxHeaders.TRACEPARENT)).isNull();
    }

    @Test
    void exchangeAndRoutingKeyFromTemplates() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        configured("exchange.template", "events.${aggregatetype}", "routing.key.template", "${aggregatetype}.${type}");
        SourceRecord out = router.apply(rows.insert(rows.row(ID, "order", "o-1", "OrderCreated", "{}")));
        assertThat(header(out, OutboxHeaders.EXCHANGE)).isEqualTo("events.order");
        assertThat(header(out, OutboxHeaders.ROUTING_KEY)).isEqualTo("order.OrderCreated");
    }

    @Test
    void templatesAreLeftToTheSinkWhenUnset() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        SourceRecord out = configured().apply(rows.insert(rows.row(ID, "order", "o-1", "OrderCreated", "{}")));
        assertThat(out.headers().lastWithName(OutboxHeaders.EXCHANGE)).isNull();
        assertThat(out.headers().lastWithName(OutboxHeaders.ROUTING_KEY)).isNull();
    }

    @Test
    void templateOverANullColumnIsFlaggedWithTheReason() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB, b -> b.field("tenant", Schema.OPTIONAL_STRING_SCHEMA));
        SourceRecord out = configured("routing.key.template", "${tenant}.${type}").apply(rows.insert(rows.row(ID, "order", "o-1", "T", "{}")));
        assertThat(OutboxHeaders.invalidReason(out)).contains("routing.key.template").contains("'tenant'").contains("null");
        assertThat(header(out, OutboxHeaders.MESSAGE_ID)).isEqualTo(ID);
        assertThat(out.value()).as("the row itself travels, for the dead-letter table").isInstanceOf(Struct.class);
        assertThat(((Struct) out.value()).getString("aggregateid")).isEqualTo("o-1");
    }

    @Test
    void missingIdIsFlagged() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB, b -> b.field("event_id", Schema.OPTIONAL_STRING_SCHEMA));
        SourceRecord out = configured("table.field.event.id", "event_id").apply(rows.insert(rows.row(ID, "order", "o-1", "T", "{}")));
        assertThat(OutboxHeaders.invalidReason(out)).contains("event id column 'event_id' is null");
        assertThat(OutboxHeaders.isOutboxEvent(out)).isTrue();
    }

    @Test
    void missingPayloadColumnIsFlagged() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        SourceRecord out = configured("table.field.event.payload", "body").apply(rows.insert(rows.row(ID, "order", "o-1", "T", "{}")));
        assertThat(OutboxHeaders.invalidReason(out)).contains("body");
    }

    @Test
    void nullPayloadIsFlagged() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        SourceRecord out = configured().apply(rows.insert(rows.row(ID, "order", "o-1", "T", null)));
        assertThat(OutboxHeaders.invalidReason(out)).isEqualTo("the payload column 'payload' is null");
        assertThat(out.key()).as("keyed by its aggregate, as a routed event is").isEqualTo("o-1");
        assertThat(out.keySchema()).isEqualTo(Schema.STRING_SCHEMA);
    }

    @Test
    void invalidJsonWithExpansionOnIsFlaggedAndValidJsonIsExpanded() {
        OutboxRows rows = new OutboxRows(PayloadType.TEXT);
        configured("table.expand.json.payload", "true");
        SourceRecord bad = router.apply(rows.insert(rows.row(ID, "order", "o-1", "T", "{not json")));
        assertThat(OutboxHeaders.invalidReason(bad)).contains("not valid JSON");

        SourceRecord good = router.apply(rows.insert(rows.row(ID, "order", "o-1", "T", "{\"total\":42}")));
        assertThat(OutboxHeaders.invalidReason(good)).isNull();
        assertThat(good.value()).isInstanceOf(Struct.class);
        assertThat(header(good, OutboxHeaders.CONTENT_TYPE)).isEqualTo("application/json");
    }

    @Test
    void failBehaviorThrowsTheReasonAndDebeziumsErrorsAsTheyAre() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        configured("invalid.message.behavior", "fail");
        assertThatThrownBy(() -> router.apply(rows.insert(rows.row(ID, "order", "o-1", "T", null))))
                .isInstanceOf(InvalidOutboxEventException.class)
                .hasMessageContaining("payload column 'payload' is null");
        router.close();
        configured("invalid.message.behavior", "fail", "table.field.event.payload", "body");
        assertThatThrownBy(() -> router.apply(rows.insert(rows.row(ID, "order", "o-1", "T", "{}"))))
                .isExactlyInstanceOf(org.apache.kafka.connect.errors.ConnectException.class)
                .hasMessage("Unable to find payload field body in event");
    }

    @Test
    void envelopePlacementKeepsPayloadDetection() {
        OutboxRows rows = new OutboxRows(PayloadType.BYTEA);
        SourceRecord out = configured("table.fields.additional.placement", "type:envelope:eventType")
                .apply(rows.insert(rows.row(ID, "order", "o-1", "T", "x".getBytes(StandardCharsets.UTF_8))));
        assertThat(out.value()).isInstanceOf(Struct.class);
        assertThat(header(out, OutboxHeaders.CONTENT_TYPE)).isEqualTo("application/octet-stream");
    }

    @Test
    void configListsDebeziumKeysAndOwnKeys() {
        assertThat(router.config().names()).contains("table.field.event.id", "route.topic.replacement", "table.expand.json.payload",
                "routing.key.template", "exchange.template", "content.type", "invalid.message.behavior", "table.field.event.correlation.id",
                "amqp.headers.enabled");
        assertThat(router.config().configKeys().get("amqp.headers.enabled").defaultValue).isEqualTo(false);
        assertThat(router.config().configKeys().get("invalid.message.behavior").defaultValue).isEqualTo("fail");
    }

    @Test
    void withDebeziumsKeysAloneTheRecordCarriesDebeziumsHeadersOnly() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB, b -> b.field("correlation", Schema.OPTIONAL_STRING_SCHEMA));
        Struct row = rows.row(ID, "order", "o-1", "OrderCreated", "{}").put("correlation", "req-7")
                .put("tracingspancontext", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        SourceRecord out = debeziumKeysOnly("table.fields.additional.placement", "type:header:eventType").apply(rows.insert(row));
        assertThat(out.headers()).extracting(h -> h.key()).containsExactly("id", "eventType");
        assertThat(OutboxHeaders.isOutboxEvent(out)).isFalse();
    }

    @Test
    void withDebeziumsKeysAloneARowDebeziumCannotRouteFailsWithDebeziumsError() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        SourceRecord input = rows.insert(rows.row(ID, "order", "o-1", "T", "{}"));
        assertThatThrownBy(() -> debeziumKeysOnly("table.field.event.key", "aggregate_id").apply(input))
                .isInstanceOf(org.apache.kafka.connect.errors.DataException.class).hasMessageContaining("aggregate_id");
        router.close();
        assertThatThrownBy(() -> debeziumKeysOnly("table.fields.additional.placement", "tenant:header").apply(rows.insert(rows.row(ID, "order", "o-1", "T", "{}"))))
                .isInstanceOf(org.apache.kafka.connect.errors.ConnectException.class).hasMessageContaining("tenant");
    }

    @Test
    void flagWithoutTheAmqpHeadersFlagsWhatDebeziumThrowsFor() {
        OutboxRows rows = new OutboxRows(PayloadType.JSONB);
        SourceRecord out = debeziumKeysOnly("table.field.event.key", "aggregate_id", "invalid.message.behavior", "flag")
                .apply(rows.insert(rows.row(ID, "order", "o-1", "T", "{}")));
        assertThat(OutboxHeaders.invalidReason(out)).contains("aggregate_id");
        assertThat(out.topic()).isEqualTo(OutboxRows.TOPIC);
        assertThat(out.headers()).extracting(h -> h.key()).doesNotContain(OutboxHeaders.MESSAGE_ID);
        // A message needs a payload, Debezium's router does not: without the AMQP headers a null payload is routed as Debezium routes it.
        router.close();
        SourceRecord nullPayload = debeziumKeysOnly("invalid.message.behavior", "flag").apply(rows.insert(rows.row(ID, "order", "o-2", "T", null)));
        assertThat(OutboxHeaders.invalidReason(nullPayload)).isNull();
        assertThat(nullPayload.value()).isNull();
    }

    @Test
    void headerKeysWithoutTheHeadersAreRefusedNamingTheKey() {
        for (String key : new String[] { "routing.key.template", "exchange.template", "table.field.event.correlation.id", "content.type" }) {
            assertThatThrownBy(() -> debeziumKeysOnly(key, "x")).as(key).isInstanceOf(ConfigException.class)
                    .hasMessageContaining(key).hasMessageContaining("amqp.headers.enabled=true");
        }
        debeziumKeysOnly("content.type", "auto");
    }

    /** One encoding for every header that comes from a column, whatever the column's type. */
    @Test
    void everyHeaderFromAColumnIsWrittenAlikeWhateverItsType() {
        byte[] bytes = "OrderCreated".getBytes(StandardCharsets.UTF_8);
        String hex = java.util.HexFormat.of().formatHex(bytes);
        OutboxRows rows = new OutboxRows(Map.of("id", Schema.BYTES_SCHEMA, "type", Schema.BYTES_SCHEMA), PayloadType.JSONB,
                b -> b.field("correlation", Schema.OPTIONAL_BYTES_SCHEMA).field("tenant", Schema.OPTIONAL_INT64_SCHEMA)
                        .field("amount", org.apache.kafka.connect.data.Decimal.builder(2).optional().build()));
        Struct row = rows.row(bytes, "order", "o-1", bytes, "{}").put("correlation", ByteBuffer.wrap(bytes)).put("tenant", 7L)
                .put("amount", new java.math.BigDecimal("1E+3").setScale(2));
        SourceRecord out = configured("table.field.event.correlation.id", "correlation", "routing.key.template", "${type}.${tenant}.${amount}",
                "exchange.template", "${correlation}").apply(rows.insert(row));

        assertThat(header(out, OutboxHeaders.MESSAGE_ID)).isEqualTo(hex);
        assertThat(header(out, OutboxHeaders.TYPE)).as("not [B@...").isEqualTo(hex);
        assertThat(header(out, OutboxHeaders.CORRELATION_ID)).isEqualTo(hex);
        assertThat(header(out, OutboxHeaders.EXCHANGE)).isEqualTo(hex);
        assertThat(header(out, OutboxHeaders.ROUTING_KEY)).isEqualTo(hex + ".7.1000.00");
        assertThat(((ByteBuffer) row.get("correlation")).remaining()).as("the row's buffer is not consumed").isEqualTo(bytes.length);
    }

    @Test
    void badOwnSettingNamesTheKey() {
        assertThatThrownBy(() -> configured("invalid.message.behavior", "ignore")).isInstanceOf(ConfigException.class)
                .hasMessageContaining("invalid.message.behavior");
        assertThatThrownBy(() -> configured("routing.key.template", "${type")).isInstanceOf(ConfigException.class)
                .hasMessageContaining("routing.key.template");
    }
}
