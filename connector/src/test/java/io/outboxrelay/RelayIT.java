package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.client.Delivery;

import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/** The relay end to end: a real outbox table, the real engine, a real broker and an independent consumer. */
class RelayIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    private static final Pattern SEQ = Pattern.compile("\"agg\": \"([^\"]+)\", \"seq\": (\\d+)");

    @TempDir
    Path dir;

    @BeforeAll
    static void outbox() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
    }

    private static String[] event(String type, String aggregate, String eventType, int seq) {
        return new String[] { type, aggregate, eventType, "{\"agg\": \"" + aggregate + "\", \"seq\": " + seq + "}" };
    }

    @Test
    void thousandsOfEventsArriveOnceInPerAggregateOrderWithTheirProperties() throws Exception {
        String exchange = broker.declareExchange("orders", "topic");
        String queue = broker.declareQueue("all-orders", exchange, "#");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "relay-bulk");
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("debezium.transforms.outbox.routing.key.template", "${aggregatetype}.${type}");
        config.put("debezium.transforms.outbox.table.fields.additional.placement", "aggregateid:header:aggregate");
        config.put("debezium.sink.rabbitmq.max.in.flight", "200");

        int aggregates = 50;
        int total = 5_000;
        try (QueueRecorder recorder = broker.record(queue); RelayHarness relay = RelayHarness.start(db, dir, config)) {
            int seq = 0;
            for (int tx = 0; tx < total / 100; tx++) {
                String[][] rows = new String[100][];
                for (int i = 0; i < 100; i++, seq++) {
                    rows[i] = event("order", "agg-" + (seq % aggregates), "OrderChanged", seq);
                }
                RelayHarness.insert(db, rows);
            }
            List<Delivery> deliveries = recorder.awaitAtLeast(total, Duration.ofSeconds(120));
            deliveries = recorder.awaitQuiet(Duration.ofSeconds(2));

            assertThat(deliveries).hasSize(total);
            Set<String> ids = new HashSet<>();
            Map<String, Integer> lastSeq = new HashMap<>();
            for (Delivery d : deliveries) {
                assertThat(ids.add(d.getProperties().getMessageId())).as("message id %s once", d.getProperties().getMessageId()).isTrue();
                assertThat(d.getProperties().getType()).isEqualTo("OrderChanged");
                assertThat(d.getProperties().getContentType()).isEqualTo("application/json");
                assertThat(d.getProperties().getDeliveryMode()).isEqualTo(2);
                assertThat(d.getProperties().getAppId()).isEqualTo("relay-bulk");
                assertThat(d.getProperties().getTimestamp()).isNotNull();
                assertThat(d.getEnvelope().getExchange()).isEqualTo(exchange);
                assertThat(d.getEnvelope().getRoutingKey()).isEqualTo("order.OrderChanged");
                Matcher m = SEQ.matcher(new String(d.getBody(), StandardCharsets.UTF_8));
                assertThat(m.find()).isTrue();
                assertThat(d.getProperties().getHeaders().get("aggregate").toString()).isEqualTo(m.group(1));
                assertThat(d.getProperties().getHeaders().get("id").toString()).as("Debezium's id header, unquoted").isEqualTo(d.getProperties().getMessageId());
                int s = Integer.parseInt(m.group(2));
                Integer previous = lastSeq.put(m.group(1), s);
                assertThat(previous == null || previous < s).as("order within %s: %s after %s", m.group(1), s, previous).isTrue();
            }
            try (Connection c = db.connect(); Statement st = c.createStatement();
                    ResultSet rs = st.executeQuery("SELECT id::text FROM outbox_event WHERE aggregateid LIKE 'agg-%'")) {
                Set<String> written = new HashSet<>();
                while (rs.next()) {
                    written.add(rs.getString(1));
                }
                assertThat(ids).as("message id = outbox id").isEqualTo(written);
            }
        }
    }

    @Test
    void debeziumServerConfigurationRunsUnchanged() throws Exception {
        String exchange = broker.declareExchange("ds", "direct");
        String queue = broker.declareQueue("ds-invoices", exchange, "invoice.events");
        Path file = dir.resolve("application.properties");
        // As a Debezium Server user writes it, including its escaped placeholder and keys with no meaning here.
        Files.writeString(file, String.join("\n",
                "debezium.sink.type=rabbitmq",
                "debezium.sink.rabbitmq.connection.host=" + broker.server().host(),
                "debezium.sink.rabbitmq.connection.port=" + broker.server().port(),
                "debezium.sink.rabbitmq.connection.username=" + broker.server().user(),
                "debezium.sink.rabbitmq.connection.password=" + broker.server().password(),
                "debezium.sink.rabbitmq.exchange=" + exchange,
                "debezium.sink.rabbitmq.routingKey.source=topic",
                "debezium.sink.rabbitmq.ackTimeout=10000",
                "debezium.source.connector.class=io.debezium.connector.postgresql.PostgresConnector",
                "debezium.source.offset.flush.interval.ms=0",
                "debezium.source.database.hostname=" + db.server().host(),
                "debezium.source.database.port=" + db.server().port(),
                "debezium.source.database.user=" + db.server().user(),
                "debezium.source.database.password=" + db.server().password(),
                "debezium.source.database.dbname=" + db.name(),
                "debezium.source.topic.prefix=dsrelay",
                "debezium.source.slot.name=dsrelay_" + db.name(),
                "debezium.source.publication.name=dsrelay_" + db.name(),
                "debezium.source.table.include.list=public.outbox_event",
                "debezium.source.plugin.name=pgoutput",
                "debezium.transforms=outbox",
                "debezium.transforms.outbox.type=io.debezium.transforms.outbox.EventRouter",
                "debezium.transforms.outbox.route.topic.replacement=\\\\${routedByValue}.events",
                "debezium.transforms.outbox.table.fields.additional.placement=type:header:type",
                "debezium.format.value=json",
                "debezium.format.header=json",
                "quarkus.log.level=INFO"));
        try (QueueRecorder recorder = broker.record(queue); RelayHarness relay = RelayHarness.startFile(db, file)) {
            RelayHarness.insert(db, event("invoice", "inv-1", "InvoiceIssued", 1), event("invoice", "inv-1", "InvoicePaid", 2));
            List<Delivery> deliveries = recorder.awaitAtLeast(2, Duration.ofSeconds(60));
            assertThat(deliveries).extracting(d -> d.getEnvelope().getRoutingKey()).containsExactly("invoice.events", "invoice.events");
            assertThat(deliveries).extracting(d -> d.getProperties().getHeaders().get("type").toString()).containsExactly("InvoiceIssued", "InvoicePaid");
            assertThat(deliveries).allSatisfy(d -> assertThat(d.getProperties().getMessageId()).matches("[0-9a-f-]{36}"));
        }
    }

    @Test
    void unroutableEventsAndMalformedRowsAreDeadLetteredWhileTheRestFlows() throws Exception {
        String exchange = broker.declareExchange("partial", "topic");
        String queue = broker.declareQueue("only-orders", exchange, "order.#");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "relay-dlq");
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("debezium.transforms.outbox.routing.key.template", "${aggregatetype}.${type}");
        try (QueueRecorder recorder = broker.record(queue); RelayHarness relay = RelayHarness.start(db, dir, config)) {
            RelayHarness.insert(db,
                    event("order", "dlq-1", "Placed", 1),
                    event("customer", "c-1", "Moved", 2),             // no binding: returned as unroutable
                    // null payload: malformed; an aggregate of its own, since with relay.dead-letter.order=keep-aggregate (the default)
                    // the events of its aggregate after it are parked behind it (DeadLetterOrderIT)
                    new String[] { "order", "dlq-2", "Broken", null },
                    event("order", "dlq-1", "Paid", 3));
            List<Delivery> deliveries = recorder.awaitAtLeast(2, Duration.ofSeconds(60));
            assertThat(recorder.awaitQuiet(Duration.ofSeconds(1))).hasSize(2);
            assertThat(deliveries).extracting(d -> d.getProperties().getType()).containsExactly("Placed", "Paid");

            List<String> reasons = new ArrayList<>();
            try (Connection c = db.connect(); Statement st = c.createStatement(); ResultSet rs = st.executeQuery(
                    "SELECT d.reason, d.event_id = o.id::text, d.routing_key, convert_from(d.payload, 'UTF8') FROM outbox_relay_dead_letter d "
                            + "JOIN outbox_event o ON o.id::text = d.event_id WHERE d.relay_name = 'relay-dlq' ORDER BY d.id")) {
                while (rs.next()) {
                    reasons.add(rs.getString(1));
                    assertThat(rs.getBoolean(2)).isTrue();
                    if (rs.getString(1).startsWith("unroutable")) {
                        assertThat(rs.getString(3)).isEqualTo("customer.Moved");
                        assertThat(rs.getString(4)).contains("\"seq\": 2");
                    }
                }
            }
            assertThat(reasons).containsExactlyInAnyOrder(
                    "the payload column 'payload' is null",
                    "unroutable: 312 NO_ROUTE (exchange '" + exchange + "', routing key 'customer.Moved')");
        }
    }

    @Test
    void idleOutboxBesideABusyTableLetsTheSlotAdvance() throws Exception {
        db.execute("CREATE TABLE busy (id bigserial PRIMARY KEY, note text)");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "relay-idle");
        config.put("debezium.sink.rabbitmq.exchange", "amq.topic");
        config.put("debezium.source.heartbeat.interval.ms", "300");
        try (RelayHarness relay = RelayHarness.start(db, dir, config)) {
            String before = confirmedFlushLsn(relay.slot());
            AtomicBoolean advanced = new AtomicBoolean();
            long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
            while (!advanced.get() && System.nanoTime() < deadline) {
                db.execute("INSERT INTO busy (note) SELECT repeat('x', 200) FROM generate_series(1, 500)");
                Thread.sleep(300);
                advanced.set(lsnGreater(confirmedFlushLsn(relay.slot()), before));
            }
            assertThat(advanced).as("confirmed_flush_lsn moved past %s with only the busy table written", before).isTrue();
        }
    }

    @Test
    void gracefulRestartMidStreamLosesNothingAndDuplicatesNothing() throws Exception {
        String exchange = broker.declareExchange("restart", "topic");
        String queue = broker.declareQueue("restart-all", exchange, "#");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "relay-restart");
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("debezium.source.table.include.list", "public.restart_outbox");
        db.execute(RelayFiles.OUTBOX_DDL.replace("outbox_event", "restart_outbox"));
        int total = 3_000;
        try (QueueRecorder recorder = broker.record(queue); RelayHarness relay = RelayHarness.start(db, dir, config)) {
            Thread writer = RelayHarness.writeInBackground(db, "restart_outbox", total, "r", 7);
            recorder.awaitAtLeast(300, Duration.ofSeconds(60));
            relay.restart();
            writer.join();
            recorder.awaitAtLeast(total, Duration.ofSeconds(120));
            List<Delivery> deliveries = recorder.awaitQuiet(Duration.ofSeconds(2));
            Set<String> ids = new HashSet<>();
            deliveries.forEach(d -> ids.add(d.getProperties().getMessageId()));
            assertThat(ids).as("nothing lost").hasSize(total);
            assertThat(deliveries).as("no duplicate after a graceful restart").hasSize(total);
        }
    }

    private String confirmedFlushLsn(String slot) throws Exception {
        try (Connection c = db.connect(); Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = '" + slot + "'")) {
            rs.next();
            return rs.getString(1);
        }
    }

    private boolean lsnGreater(String a, String b) throws Exception {
        try (Connection c = db.connect(); Statement st = c.createStatement();
                ResultSet rs = st.executeQuery("SELECT '" + a + "'::pg_lsn > '" + b + "'::pg_lsn")) {
            rs.next();
            return rs.getBoolean(1);
        }
    }
}
