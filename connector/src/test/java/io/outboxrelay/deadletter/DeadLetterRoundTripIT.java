package io.outboxrelay.deadletter;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Delivery;

import io.outboxrelay.config.DatabaseSettings;
import io.outboxrelay.sink.amqp.AmqpRepublisher;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/** A dead letter written to the real table and re-driven to the real broker arrives as it was first published, binary headers included. */
class DeadLetterRoundTripIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    @Test
    void writeThenRedriveKeepsBodyPropertiesAndHeaderValues() throws Exception {
        DatabaseSettings database = new DatabaseSettings(db.server().host(), db.server().port(), db.server().user(), db.server().password(), db.name());
        String exchange = broker.declareExchange("roundtrip", "topic");
        String queue = broker.declareQueue("roundtrip", exchange, "#");
        AMQP.BasicProperties props = DeadLetterCodecTest.everyKindOfHeader();
        byte[] body = { '{', '}', 0, (byte) 0xfe };
        try (DeadLetterTable table = new DeadLetterTable(database, "outbox_relay_dead_letter", "roundtrip")) {
            table.createIfMissing();
            table.write(DeadLetterCodec.undeliverable("unroutable: 312 NO_ROUTE", exchange, "orders.created", props, body, "outbox.event.order", "a-1"));
        }
        try (QueueRecorder recorder = broker.record(queue)) {
            RedriveResult result;
            try (AmqpRepublisher amqp = new AmqpRepublisher(broker.connectionFactory(), "roundtrip redrive", Duration.ofSeconds(10))) {
                result = new DeadLetterRedriver(database, "outbox_relay_dead_letter", "roundtrip", true).redrive(Redrive.all(), amqp, line -> { });
            }
            assertThat(result.republished()).containsExactly("e-1");
            List<Delivery> got = recorder.awaitAtLeast(1, Duration.ofSeconds(10));
            Delivery d = got.get(0);
            assertThat(d.getBody()).containsExactly(body);
            assertThat(d.getEnvelope().getRoutingKey()).isEqualTo("orders.created");
            assertThat(d.getProperties().getMessageId()).isEqualTo("e-1");
            assertThat(d.getProperties().getType()).isEqualTo("OrderCreated");
            assertThat(d.getProperties().getCorrelationId()).isEqualTo("c-9");
            Map<String, Object> h = d.getProperties().getHeaders();
            // A byte array travels as AMQP's byte-array field type and comes back as one, not as text.
            assertThat((byte[]) h.get("bytes")).containsExactly(0, 0xff, 0x10, 0xc3, 0x28);
            assertThat(h.get("text").toString()).isEqualTo("plain");
            assertThat(h).containsEntry("int", 42).containsEntry("long", 1L << 40).containsEntry("bool", true).containsEntry("double", 2.5d)
                    .containsEntry("decimal", new java.math.BigDecimal("12.3400"));
        }
    }
}
