package io.outboxrelay.sink;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.source.SourceRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.RelayConfigLoader;
import io.outboxrelay.transforms.OutboxHeaders;

/** What a routed record becomes on the wire: routing from the router's headers or the sink's settings, properties, headers, body. */
class MessageMapperTest {

    @TempDir
    Path dir;

    private MessageMapper mapper(String... sinkLines) throws Exception {
        Path file = dir.resolve("relay.properties");
        Files.writeString(file, String.join("\n", "relay.name=orders",
                "debezium.source.database.hostname=db", "debezium.source.database.user=relay", "debezium.source.database.password=pw",
                "debezium.source.database.dbname=shop", "debezium.source.table.include.list=public.outbox_event",
                "debezium.sink.rabbitmq.connection.host=mq", String.join("\n", sinkLines)));
        RelayConfig config = RelayConfigLoader.load(file, null);
        return new MessageMapper(config.sink(), config.name());
    }

    private static SourceRecord routed(Object value, Schema schema) {
        SourceRecord r = new SourceRecord(null, null, "outbox.event.order", null, Schema.STRING_SCHEMA, "order-7", schema, value, 1_700_000_000_000L);
        r.headers().addString(OutboxHeaders.MESSAGE_ID, "e-1");
        r.headers().addString(OutboxHeaders.TYPE, "OrderPlaced");
        r.headers().addString(OutboxHeaders.CONTENT_TYPE, "application/json");
        r.headers().addString("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
        r.headers().addLong("tenant", 42L);
        return r;
    }

    @Test
    void theRoutersHeadersBecomePropertiesAndItsInstructionsStayOffTheWire() throws Exception {
        SourceRecord r = routed("{\"total\": 3}", Schema.STRING_SCHEMA);
        r.headers().addString(OutboxHeaders.EXCHANGE, "orders");
        r.headers().addString(OutboxHeaders.ROUTING_KEY, "order.OrderPlaced");
        OutgoingMessage m = mapper("debezium.sink.rabbitmq.exchange=fallback").map(r);
        assertThat(m.destination()).as("the router's exchange before the sink's").isEqualTo("orders");
        assertThat(m.routingKey()).isEqualTo("order.OrderPlaced");
        assertThat(m.messageId()).isEqualTo("e-1");
        assertThat(m.properties().getType()).isEqualTo("OrderPlaced");
        assertThat(m.properties().getContentType()).isEqualTo("application/json");
        assertThat(m.properties().getAppId()).isEqualTo("orders");
        assertThat(m.properties().getDeliveryMode()).isEqualTo(2);
        assertThat(m.properties().getTimestamp().getTime()).isEqualTo(1_700_000_000_000L);
        assertThat(m.properties().getHeaders()).containsEntry("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
                .containsEntry("tenant", 42L).doesNotContainKeys(OutboxHeaders.MESSAGE_ID, OutboxHeaders.EXCHANGE, OutboxHeaders.ROUTING_KEY);
        assertThat(new String(m.body(), StandardCharsets.UTF_8)).isEqualTo("{\"total\": 3}");
    }

    @Test
    void withoutTheRoutersRoutingTheSinksSettingsDecideAsDebeziumServersDo() throws Exception {
        SourceRecord r = routed("x", Schema.STRING_SCHEMA);
        OutgoingMessage byKey = mapper("debezium.sink.rabbitmq.exchange=events", "debezium.sink.rabbitmq.routingKeyFromTopicName=false",
                "debezium.sink.rabbitmq.routingKey.source=key").map(r);
        assertThat(byKey.destination()).isEqualTo("events");
        assertThat(byKey.routingKey()).as("the aggregate id, plain").isEqualTo("order-7");

        OutgoingMessage byTopic = mapper("debezium.sink.rabbitmq.routingKey.source=topic").map(r);
        assertThat(byTopic.destination()).as("no exchange set: the topic").isEqualTo("outbox.event.order");
        assertThat(byTopic.routingKey()).isEqualTo("outbox.event.order");
    }

    @Test
    void bodiesOfEveryShapeAreBytesStructuredOnesJson() throws Exception {
        MessageMapper mapper = mapper("debezium.sink.rabbitmq.exchange=events");
        assertThat(mapper.map(routed(new byte[] { 1, 2 }, Schema.BYTES_SCHEMA)).body()).containsExactly(1, 2);
        assertThat(mapper.map(routed(ByteBuffer.wrap(new byte[] { 3 }), Schema.BYTES_SCHEMA)).body()).containsExactly(3);
        assertThat(new String(mapper.map(routed(12L, Schema.INT64_SCHEMA)).body(), StandardCharsets.UTF_8)).isEqualTo("12");
        Schema schema = SchemaBuilder.struct().field("total", Schema.INT32_SCHEMA).build();
        assertThat(new String(mapper.map(routed(new Struct(schema).put("total", 3), schema)).body(), StandardCharsets.UTF_8))
                .isEqualTo("{\"total\":3}");
        assertThat(new String(mapper.map(routed(null, null)).body(), StandardCharsets.UTF_8)).as("a null payload: null.value, Debezium Server's "
                + "default").isEqualTo("default");
    }
}
