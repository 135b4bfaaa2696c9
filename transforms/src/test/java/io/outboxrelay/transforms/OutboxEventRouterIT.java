package io.outboxrelay.transforms;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Properties;

import org.apache.kafka.connect.source.SourceRecord;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.outboxrelay.testing.TestDatabase;
import io.outboxrelay.testing.TestEngine;

/** The router inside a real Debezium embedded engine over a real PostgreSQL outbox table. */
class OutboxEventRouterIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    @Test
    void routesRowsFromARealOutboxTable() throws Exception {
        db.execute("CREATE TABLE outbox (id uuid PRIMARY KEY, aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL, "
                + "type varchar(255) NOT NULL, payload jsonb, created_at timestamptz NOT NULL DEFAULT now(), correlation text, "
                + "tracingspancontext varchar(256))");
        Properties props = TestEngine.outboxProperties(db, db.slotName(), "public.outbox");
        props.setProperty("offset.storage", "org.apache.kafka.connect.storage.MemoryOffsetBackingStore");
        props.setProperty("transforms", "outbox");
        props.setProperty("transforms.outbox.type", OutboxEventRouter.class.getName());
        // As the relay configures it: the AMQP headers, and rows that cannot become messages flagged.
        props.setProperty("transforms.outbox.amqp.headers.enabled", "true");
        props.setProperty("transforms.outbox.invalid.message.behavior", "flag");
        props.setProperty("transforms.outbox.table.field.event.timestamp", "created_at");
        props.setProperty("transforms.outbox.table.field.event.correlation.id", "correlation");
        props.setProperty("transforms.outbox.table.fields.additional.placement", "type:header:type");
        props.setProperty("transforms.outbox.routing.key.template", "${aggregatetype}.${type}");
        props.setProperty("transforms.outbox.exchange.template", "${aggregatetype}");

        try (TestEngine engine = TestEngine.start(db, props)) {
            db.execute("INSERT INTO outbox VALUES ('11111111-2222-3333-4444-555555555555', 'order', 'o-1', 'OrderCreated', "
                    + "'{\"total\": 42}', '2026-01-02T03:04:05.678Z', 'req-1', "
                    + "'traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')",
                    "INSERT INTO outbox VALUES ('11111111-2222-3333-4444-666666666666', 'order', 'o-1', 'OrderPaid', NULL)",
                    "BEGIN; INSERT INTO outbox (id, aggregatetype, aggregateid, type, payload) VALUES "
                            + "('11111111-2222-3333-4444-777777777777', 'customer', 'c-1', 'CustomerMoved', '[1,2]'); "
                            + "DELETE FROM outbox WHERE id = '11111111-2222-3333-4444-777777777777'; COMMIT");

            List<SourceRecord> records = engine.awaitRecords(3, Duration.ofSeconds(60));
            Thread.sleep(500);
            assertThat(engine.records()).as("the delete is dropped, as Debezium's router does").hasSize(3);

            SourceRecord created = records.get(0);
            assertThat(created.topic()).isEqualTo("outbox.event.order");
            assertThat(created.key()).isEqualTo("o-1");
            assertThat(created.value()).isEqualTo("{\"total\": 42}");
            assertThat(OutboxHeaders.string(created, OutboxHeaders.MESSAGE_ID)).isEqualTo("11111111-2222-3333-4444-555555555555");
            assertThat(OutboxHeaders.string(created, OutboxHeaders.TYPE)).isEqualTo("OrderCreated");
            assertThat(OutboxHeaders.string(created, OutboxHeaders.CONTENT_TYPE)).isEqualTo("application/json");
            assertThat(OutboxHeaders.string(created, OutboxHeaders.CORRELATION_ID)).isEqualTo("req-1");
            assertThat(OutboxHeaders.string(created, OutboxHeaders.TRACEPARENT)).isEqualTo("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
            assertThat(OutboxHeaders.string(created, OutboxHeaders.EXCHANGE)).isEqualTo("order");
            assertThat(OutboxHeaders.string(created, OutboxHeaders.ROUTING_KEY)).isEqualTo("order.OrderCreated");
            assertThat(OutboxHeaders.string(created, "type")).isEqualTo("OrderCreated");
            assertThat(created.timestamp()).isEqualTo(Instant.parse("2026-01-02T03:04:05.678Z").toEpochMilli());

            SourceRecord nullPayload = records.get(1);
            assertThat(OutboxHeaders.invalidReason(nullPayload)).isEqualTo("the payload column 'payload' is null");
            assertThat(OutboxHeaders.string(nullPayload, OutboxHeaders.MESSAGE_ID)).isEqualTo("11111111-2222-3333-4444-666666666666");

            SourceRecord deletedInSameTx = records.get(2);
            assertThat(deletedInSameTx.topic()).isEqualTo("outbox.event.customer");
            assertThat(OutboxHeaders.string(deletedInSameTx, OutboxHeaders.ROUTING_KEY)).isEqualTo("customer.CustomerMoved");
        }
    }
}
