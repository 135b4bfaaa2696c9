package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.DeliveryCheck;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.Progress;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ServerControl;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/**
 * Two things wrong at once: an event that must be parked (unroutable, or a row the router cannot
 * use) while the dead-letter table refuses rows (a constraint, a revoked INSERT, PostgreSQL
 * stopped), and the {@code fail} policies followed by a fix. In every case the event is parked or
 * delivered once the cause is gone, nothing is lost, and first deliveries keep per-aggregate order.
 */
class ParkingFaultIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    private static final String TABLE = "fate_outbox";
    /**
     * How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. Long here:
     * a dead-letter table that refused rows is tried again up to 30 s later, and PostgreSQL is stopped under the relay.
     */
    private static final Duration STALL = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    @BeforeAll
    static void outbox() throws Exception {
        // payload may be NULL, so that a row the router cannot use can be written.
        db.execute("CREATE TABLE " + TABLE + " (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype varchar(255) NOT NULL, "
                + "aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb)");
    }

    /** Events of aggregate type {@code order} are bound; {@code nowhere} has no binding, so the broker returns it. */
    private Map<String, String> config(String relayName, String exchange) {
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, relayName);
        config.put("debezium.source.table.include.list", "public." + TABLE);
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("debezium.transforms.outbox.routing.key.template", "${aggregatetype}");
        config.put("relay.restart.backoff.initial.ms", "200");
        config.put("relay.restart.backoff.max.ms", "2000");
        return config;
    }

    @Test
    void aRefusingDeadLetterTableHoldsTheStreamMidwayUntilItTakesRowsAgain() throws Exception {
        String name = "refused-mid";
        String exchange = broker.declareExchange(name, "topic");
        String queue = broker.declareQueue(name, exchange, "order");
        Map<String, String> config = config(name, exchange);
        try (QueueRecorder recorder = broker.record(queue); RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            db.execute("ALTER TABLE outbox_relay_dead_letter ADD CONSTRAINT refuse_" + tag(name) + " CHECK (relay_name <> '" + name + "') NOT VALID");
            write(name + "-a", 100);
            String unroutable = insert("nowhere", name + "-x", "{\"lost\": 1}");
            String invalid = insert("order", name + "-y", null);
            write(name + "-b", 100);
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(relay.get("/q/health/ready").body())
                    .contains("cannot write the dead-letter table outbox_relay_dead_letter (relay.dead-letter.table)"));
            assertThat(relay.metric("outbox_relay_dead_letter_failing{relay=\"" + name + "\"}")).isEqualTo(1.0);
            assertThat(relay.log()).contains("Cannot park outbox event " + unroutable, "Nothing from this event on is marked processed");
            assertThat(parked(name)).as("nothing parked while the table refuses").isEmpty();

            db.execute("ALTER TABLE outbox_relay_dead_letter DROP CONSTRAINT refuse_" + tag(name));
            Progress.atLeast("dead-letter rows of the unroutable event and the invalid row", 2, STALL,
                    () -> parked(name).keySet().stream().filter(Set.of(unroutable, invalid)::contains).count());
            Set<String> committed = committed(name + "-a", name + "-b");
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitIds(committed, Duration.ofSeconds(60)), committed);
            await().atMost(Duration.ofSeconds(60)).until(() -> relay.get("/q/health/ready").status() == 200);
            FaultIT.report("dead-letter table refusing rows (CHECK constraint) while an unroutable event and an invalid row arrive mid-stream, "
                    + "then the constraint dropped: both parked, " + check);
            assertThat(check.lost()).isZero();
            assertThat(check.orderViolations()).isEmpty();
            assertThat(parked(name).get(unroutable)).startsWith("unroutable: 312 NO_ROUTE");
            assertThat(parked(name).get(invalid)).contains("payload column 'payload' is null");
        }
    }

    /** The case the tail finisher used to lose: the unroutable event is the last one, the outbox goes quiet, and the relay is killed. */
    @Test
    void anUnroutableLastEventSurvivesARefusingTableAndAKill() throws Exception {
        String name = "refused-last";
        String exchange = broker.declareExchange(name, "topic");
        String queue = broker.declareQueue(name, exchange, "order");
        Map<String, String> config = config(name, exchange);
        config.put("debezium.source.heartbeat.interval.ms", "0");
        RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
        try (QueueRecorder recorder = broker.record(queue)) {
            db.execute("ALTER TABLE outbox_relay_dead_letter ADD CONSTRAINT refuse_" + tag(name) + " CHECK (relay_name <> '" + name + "') NOT VALID");
            write(name + "-a", 200);
            String unroutable = insert("nowhere", name + "-x", "{\"lost\": 1}");
            recorder.awaitIds(committed(name + "-a"), Duration.ofSeconds(60));
            RelayProcess first = relay;
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(first.log()).contains("Cannot park outbox event " + unroutable));
            Thread.sleep(1_500);
            relay.kill();

            db.execute("ALTER TABLE outbox_relay_dead_letter DROP CONSTRAINT refuse_" + tag(name));
            relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(parked(name)).containsKey(unroutable));
            write(name + "-b", 50);
            Set<String> committed = committed(name + "-a", name + "-b");
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitIds(committed, Duration.ofSeconds(60)), committed);
            FaultIT.report("unroutable event last before a quiet outbox while the dead-letter table refuses it, relay killed (SIGKILL), "
                    + "constraint dropped, relay started: event parked, " + check);
            assertThat(check.lost()).isZero();
            assertThat(check.orderViolations()).isEmpty();
        }
        finally {
            relay.close();
        }
    }

    /** Least privilege for real: the relay runs as a role that loses INSERT on the dead-letter table, then PostgreSQL stops too. */
    @Test
    void revokedInsertThenAStoppedServerThenTheGrantBack() throws Exception {
        String name = "revoked";
        String role = "fate_" + Long.toHexString(System.nanoTime());
        String publication = "fate_revoked";
        db.execute("CREATE ROLE " + role + " LOGIN REPLICATION",
                "GRANT SELECT ON " + TABLE + " TO " + role,
                "CREATE PUBLICATION " + publication + " FOR TABLE " + TABLE + " WITH (publish = 'insert')",
                String.join(";\n", RelayFiles.relayRoleTables()),
                "GRANT SELECT, INSERT, UPDATE, DELETE ON outbox_relay_offsets, outbox_relay_dead_letter, outbox_relay_leases, outbox_relay_leases_members TO " + role,
                "GRANT USAGE ON SEQUENCE outbox_relay_dead_letter_id_seq TO " + role);
        String exchange = broker.declareExchange(name, "topic");
        String queue = broker.declareQueue(name, exchange, "order");
        Map<String, String> config = config(name, exchange);
        config.put("debezium.source.database.user", role);
        config.put("debezium.source.publication.name", publication);
        config.put("debezium.source.publication.autocreate.mode", "disabled");
        try (QueueRecorder recorder = broker.record(queue); RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            db.execute("REVOKE INSERT ON outbox_relay_dead_letter FROM " + role);
            write(name + "-a", 100);
            String unroutable = insert("nowhere", name + "-x", "{\"lost\": 1}");
            String invalid = insert("order", name + "-y", null);
            write(name + "-b", 100);
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(relay.log()).contains("Cannot park outbox event " + unroutable,
                    "permission denied for table outbox_relay_dead_letter"));

            ServerControl.stopPostgres();
            Thread.sleep(2_000);
            ServerControl.startPostgres();
            await().atMost(Duration.ofSeconds(60)).until(() -> relay.get("/q/health/ready").body().contains("cannot write the dead-letter table"));
            assertThat(parked(name)).isEmpty();

            db.execute("GRANT INSERT ON outbox_relay_dead_letter TO " + role);
            Progress.atLeast("dead-letter rows of the unroutable event and the invalid row", 2, STALL,
                    () -> parked(name).keySet().stream().filter(Set.of(unroutable, invalid)::contains).count());
            Set<String> committed = committed(name + "-a", name + "-b");
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitIds(committed, Duration.ofSeconds(90)), committed);
            FaultIT.report("relay as a least-privilege role: INSERT on the dead-letter table revoked while an unroutable event and an invalid row "
                    + "arrive, PostgreSQL restarted meanwhile, then granted again: both parked, " + check);
            assertThat(check.lost()).isZero();
            assertThat(check.orderViolations()).isEmpty();
        }
        finally {
            db.execute("DROP PUBLICATION IF EXISTS " + publication, "DROP OWNED BY " + role, "DROP ROLE " + role);
        }
    }

    @Test
    void onUnroutableFailStopsBeforeTheEventAndAFixedBindingDeliversIt() throws Exception {
        String name = "fail-unroutable";
        String exchange = broker.declareExchange(name, "topic");
        String queue = broker.declareQueue(name, exchange, "order");
        Map<String, String> config = config(name, exchange);
        config.put("relay.on-unroutable", "fail");
        config.put("debezium.source.heartbeat.interval.ms", "0");
        RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
        try (QueueRecorder recorder = broker.record(queue)) {
            write(name + "-a", 100);
            String unroutable = insert("nowhere", name + "-x", "{\"agg\": \"" + name + "-x\", \"seq\": 0}");
            recorder.awaitIds(committed(name + "-a"), Duration.ofSeconds(60));
            RelayProcess first = relay;
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(first.log())
                    .contains("outbox event " + unroutable + " was refused by RabbitMQ", "relay.on-unroutable=fail"));
            assertThat(parked(name)).as("fail means not parked").isEmpty();
            relay.stop();

            // The fix: a binding for the events that had none.
            bind(queue, exchange, "nowhere");
            relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
            write(name + "-b", 50);
            Set<String> committed = committed(name + "-a", name + "-x", name + "-b");
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitIds(committed, Duration.ofSeconds(60)), committed);
            FaultIT.report("relay.on-unroutable=fail met an unroutable last event, binding added, relay started again: it is delivered, " + check);
            assertThat(check.lost()).isZero();
            assertThat(check.orderViolations()).isEmpty();
        }
        finally {
            relay.close();
        }
    }

    @Test
    void onInvalidFailStopsBeforeTheRowAndDeadLetteringItAfterwardsParksIt() throws Exception {
        String name = "fail-invalid";
        String exchange = broker.declareExchange(name, "topic");
        String queue = broker.declareQueue(name, exchange, "order");
        Map<String, String> config = config(name, exchange);
        config.put("relay.on-invalid", "fail");
        RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
        try (QueueRecorder recorder = broker.record(queue)) {
            write(name + "-a", 100);
            String invalid = insert("order", name + "-y", null);
            write(name + "-b", 100);
            RelayProcess first = relay;
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(first.log())
                    .contains("outbox event " + invalid + " cannot be published", "relay.on-invalid=fail"));
            Thread.sleep(2_000);
            assertThat(recorder.deliveries().stream().map(d -> d.getProperties().getMessageId()))
                    .as("nothing after the invalid row is published").doesNotContainAnyElementsOf(committed(name + "-b"));
            relay.stop();

            config.put("relay.on-invalid", "dead-letter");
            relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(parked(name)).containsKey(invalid));
            Set<String> committed = committed(name + "-a", name + "-b");
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitIds(committed, Duration.ofSeconds(60)), committed);
            FaultIT.report("relay.on-invalid=fail met an invalid row mid-stream, policy changed to dead-letter, relay started again: row parked, " + check);
            assertThat(check.lost()).isZero();
            assertThat(check.orderViolations()).isEmpty();
        }
        finally {
            relay.close();
        }
    }

    private static void write(String prefix, int events) throws Exception {
        try (OutboxWriter writer = OutboxWriter.start(db::connect, TABLE, prefix, 5, events, 1_000)) {
            writer.awaitDone(STALL);
        }
    }

    private static String insert(String aggregateType, String aggregateId, String payload) throws Exception {
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement("INSERT INTO " + TABLE
                + " (aggregatetype, aggregateid, type, payload) VALUES (?, ?, 'T', ?::jsonb) RETURNING id::text")) {
            ps.setString(1, aggregateType);
            ps.setString(2, aggregateId);
            ps.setString(3, payload);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getString(1);
            }
        }
    }

    private static Set<String> committed(String... prefixes) throws Exception {
        Set<String> ids = new java.util.HashSet<>();
        for (String prefix : prefixes) {
            ids.addAll(OutboxWriter.committedIds(db::connect, TABLE, prefix));
        }
        return ids;
    }

    private static Map<String, String> parked(String relay) throws Exception {
        Map<String, String> reasons = new HashMap<>();
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement(
                "SELECT event_id, reason FROM outbox_relay_dead_letter WHERE relay_name = ?")) {
            ps.setString(1, relay);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    reasons.put(rs.getString(1), rs.getString(2));
                }
            }
        }
        return reasons;
    }

    private static void bind(String queue, String exchange, String key) throws Exception {
        try (com.rabbitmq.client.Connection c = broker.newConnection(); com.rabbitmq.client.Channel ch = c.createChannel()) {
            ch.queueBind(queue, exchange, key);
        }
    }

    private static String tag(String name) {
        return name.replace('-', '_');
    }
}
