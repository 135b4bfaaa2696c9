package io.outboxrelay.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.transforms.Transformation;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import io.debezium.data.Envelope;
import io.debezium.data.Json;
import io.debezium.data.Uuid;
import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.sink.MessageMapper;
import io.outboxrelay.transforms.OutboxHeaders;

/**
 * The router's output is Debezium's unless asked for more, and the relay asks: whether it builds the
 * chain or the file names a router (Debezium's, which it replaces, or ours), the chain it hands the
 * engine adds the AMQP headers the sink publishes from and flags what it cannot route, so the sink
 * dead-letters it. Built from the engine's properties as the engine builds it.
 */
class RelayRouterChainTest {

    private static final String ID = "5f0c6a5e-8d1b-4c3e-9a57-2b7f1e0d9c41";
    private static final String MINIMAL = String.join("\n",
            "relay.name=orders",
            "debezium.source.database.hostname=db",
            "debezium.source.database.user=relay",
            "debezium.source.database.password=pw",
            "debezium.source.database.dbname=shop",
            "debezium.sink.rabbitmq.connection.host=mq",
            "debezium.sink.rabbitmq.exchange=events");

    @TempDir
    Path dir;

    private RelayConfig load(String... lines) throws Exception {
        Path file = dir.resolve("relay.properties");
        Files.writeString(file, MINIMAL + "\n" + String.join("\n", lines));
        return RelayConfigLoader.load(file, null);
    }

    /** The three ways a chain comes about: the relay installs it, or the file names Debezium's router or ours. */
    private RelayConfig chain(String how, String... more) throws Exception {
        List<String> lines = new ArrayList<>(switch (how) {
            case "installed" -> List.<String> of();
            case "debezium" -> List.of("debezium.transforms=outbox", "debezium.transforms.outbox.type=io.debezium.transforms.outbox.EventRouter");
            default -> List.of("debezium.transforms=outbox", "debezium.transforms.outbox.type=io.outboxrelay.transforms.OutboxEventRouter");
        });
        lines.addAll(List.of(more));
        return load(lines.toArray(String[]::new));
    }

    @ParameterizedTest
    @ValueSource(strings = { "installed", "debezium", "named" })
    void theSinkGetsItsPropertiesAndAnInvalidRowIsFlaggedForTheDeadLetterTable(String how) throws Exception {
        RelayConfig config = chain(how, "debezium.transforms.outbox.routing.key.template=${aggregatetype}.${type}");
        assertThat(config.engineProperties()).containsEntry("transforms.outbox.amqp.headers.enabled", "true")
                .containsEntry("transforms.outbox.invalid.message.behavior", "flag");
        List<Transformation<SourceRecord>> chain = transforms(config.engineProperties());
        try {
            SourceRecord event = apply(chain, insert("{\"total\":42}"));
            assertThat(OutboxHeaders.isOutboxEvent(event)).isTrue();
            OutgoingMessage message = new MessageMapper(config.sink(), config.name()).map(event);
            assertThat(message.messageId()).isEqualTo(ID);
            assertThat(message.properties().getType()).isEqualTo("OrderCreated");
            assertThat(message.properties().getContentType()).isEqualTo("application/json");
            assertThat(message.routingKey()).isEqualTo("order.OrderCreated");
            assertThat(message.properties().getHeaders()).as("instructions to the sink stay off the wire").containsOnlyKeys("id");

            SourceRecord invalid = apply(chain, insert(null));
            assertThat(OutboxHeaders.invalidReason(invalid)).isEqualTo("the payload column 'payload' is null");
            assertThat(OutboxHeaders.string(invalid, OutboxHeaders.MESSAGE_ID)).isEqualTo(ID);
            assertThat(invalid.key()).as("keyed by its aggregate").isEqualTo("o-1");
        }
        finally {
            chain.forEach(Transformation::close);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = { "installed", "debezium", "named" })
    void anInvalidMessageBehaviorTheFileChoseIsKept(String how) throws Exception {
        RelayConfig config = chain(how, "debezium.transforms.outbox.invalid.message.behavior=fail");
        assertThat(config.engineProperties()).containsEntry("transforms.outbox.invalid.message.behavior", "fail")
                .containsEntry("transforms.outbox.amqp.headers.enabled", "true");
        assertThat(config.warnings()).noneMatch(w -> w.contains("invalid.message.behavior"));
    }

    @Test
    void aChoiceFromTheEnvironmentOrASystemPropertyCountsToo() throws Exception {
        System.setProperty("debezium.transforms.outbox.invalid.message.behavior", "fail");
        try {
            assertThat(chain("named").engineProperties()).containsEntry("transforms.outbox.invalid.message.behavior", "fail");
        }
        finally {
            System.clearProperty("debezium.transforms.outbox.invalid.message.behavior");
        }
    }

    @Test
    void theHeadersCannotBeTurnedOffForTheSinkPublishesFromThem() throws Exception {
        RelayConfig config = chain("named", "debezium.transforms.outbox.amqp.headers.enabled=false");
        assertThat(config.engineProperties()).containsEntry("transforms.outbox.amqp.headers.enabled", "true");
        assertThat(config.warnings()).anyMatch(w -> w.startsWith("debezium.transforms.outbox.amqp.headers.enabled=false is replaced by true"));
        assertThat(chain("named", "debezium.transforms.outbox.amqp.headers.enabled=true").warnings()).noneMatch(w -> w.contains("amqp.headers"));
    }

    @Test
    void everyOutboxRouterInTheChainIsSetUpAndOtherTransformsAreLeftAlone() throws Exception {
        Properties engine = load("debezium.transforms=orders,extra,customers",
                "debezium.transforms.orders.type=io.outboxrelay.transforms.OutboxEventRouter",
                "debezium.transforms.extra.type=org.apache.kafka.connect.transforms.InsertField$Value",
                "debezium.transforms.customers.type=io.debezium.transforms.outbox.EventRouter",
                "debezium.transforms.customers.invalid.message.behavior=fail").engineProperties();
        assertThat(engine).containsEntry("transforms.orders.amqp.headers.enabled", "true").containsEntry("transforms.orders.invalid.message.behavior", "flag")
                .containsEntry("transforms.customers.amqp.headers.enabled", "true").containsEntry("transforms.customers.invalid.message.behavior", "fail")
                .doesNotContainKeys("transforms.extra.amqp.headers.enabled", "transforms.extra.invalid.message.behavior");
    }

    /** The chain as the engine builds it from its properties. */
    @SuppressWarnings("unchecked")
    private static List<Transformation<SourceRecord>> transforms(Properties engine) throws Exception {
        List<Transformation<SourceRecord>> chain = new ArrayList<>();
        for (String name : engine.getProperty("transforms").split(",")) {
            String prefix = "transforms." + name.trim() + ".";
            Map<String, String> props = new HashMap<>();
            engine.stringPropertyNames().stream().filter(k -> k.startsWith(prefix)).forEach(k -> props.put(k.substring(prefix.length()), engine.getProperty(k)));
            Transformation<SourceRecord> t = (Transformation<SourceRecord>) Class.forName(props.get("type")).getDeclaredConstructor().newInstance();
            t.configure(props);
            chain.add(t);
        }
        return chain;
    }

    private static SourceRecord apply(List<Transformation<SourceRecord>> chain, SourceRecord record) {
        for (Transformation<SourceRecord> t : chain) {
            record = t.apply(record);
        }
        return record;
    }

    /** An insert into the outbox table as Debezium's PostgreSQL connector emits it. */
    private static SourceRecord insert(String payload) {
        Schema row = SchemaBuilder.struct().name("orders.public.outbox_event.Value").optional()
                .field("id", Uuid.builder().build())
                .field("aggregatetype", Schema.STRING_SCHEMA)
                .field("aggregateid", Schema.STRING_SCHEMA)
                .field("type", Schema.STRING_SCHEMA)
                .field("payload", Json.builder().optional().build())
                .build();
        Schema source = SchemaBuilder.struct().name("io.debezium.connector.postgresql.Source").field("lsn", Schema.OPTIONAL_INT64_SCHEMA).build();
        Envelope envelope = Envelope.defineSchema().withName("orders.public.outbox_event.Envelope").withRecord(row).withSource(source).build();
        Struct after = new Struct(row).put("id", ID).put("aggregatetype", "order").put("aggregateid", "o-1").put("type", "OrderCreated").put("payload", payload);
        Struct value = envelope.create(after, new Struct(source).put("lsn", 7L), Instant.parse("2026-11-21T10:15:30Z"));
        return new SourceRecord(Map.of("server", "orders"), Map.of("lsn", 7L), "orders.public.outbox_event", null, null, null, envelope.schema(), value);
    }
}
