package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.client.Delivery;

import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.DeliveryCheck;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.Progress;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ServerControl;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/** What the relay refuses to do wrong: poison rows, offsets it cannot store, a retained-WAL leak, a second reader on its slot. */
class GuardrailsIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    /**
     * How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. Long here:
     * refused offset writes and a channel the broker closes make the relay retry with back-off.
     */
    private static final Duration STALL = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    @BeforeAll
    static void outbox() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
    }

    private Map<String, String> config(String relayName, String exchange) {
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, relayName);
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("relay.restart.backoff.initial.ms", "200");
        return config;
    }

    @Test
    void poisonRowsAreParkedWithAReasonWhileGoodOnesFlowInOrder() throws Exception {
        // Nullable id and a text payload, so that the database lets every kind of poison in.
        db.execute("CREATE TABLE poison_outbox (id uuid, aggregatetype varchar(255), aggregateid varchar(255), type varchar(255), payload text)");
        String exchange = broker.declareExchange("poison", "topic");
        String queue = broker.declareQueue("poison", exchange, "#");
        Map<String, String> config = config("poison", exchange);
        config.put("debezium.source.table.include.list", "public.poison_outbox");
        config.put("debezium.transforms.outbox.table.expand.json.payload", "true");
        long maxMessageSize = ServerControl.setMaxMessageSize(1_048_576);
        try (QueueRecorder recorder = broker.record(queue); RelayHarness relay = RelayHarness.start(db, dir, config)) {
            String huge = "{\"blob\": \"" + "x".repeat(2_000_000) + "\"}";
            List<String[]> rows = new ArrayList<>();
            int seq = 0;
            // Each poison row in an aggregate of its own: with relay.dead-letter.order=keep-aggregate, the default, a good row of
            // the same aggregate would wait parked behind it (DeadLetterOrderIT).
            int poisoned = 0;
            for (String[] poison : new String[][] { { "gen_random_uuid()", null }, { "NULL", "{\"seq\": -1}" }, { "gen_random_uuid()", "{not json" },
                    { "gen_random_uuid()", huge } }) {
                rows.add(new String[] { "gen_random_uuid()", "{\"agg\": \"g\", \"seq\": " + seq++ + "}", "g" });
                rows.add(new String[] { poison[0], poison[1], "p-" + poisoned++ });
            }
            for (int i = 0; i < 6; i++) {
                rows.add(new String[] { "gen_random_uuid()", "{\"agg\": \"g\", \"seq\": " + seq++ + "}", "g" });
            }
            try (Connection c = db.connect()) {
                for (String[] row : rows) {
                    try (PreparedStatement ps = c.prepareStatement("INSERT INTO poison_outbox VALUES (" + row[0] + ", 'order', ?, 'T', ?)")) {
                        ps.setString(1, row[2]);
                        ps.setString(2, row[1]);
                        ps.executeUpdate();
                    }
                }
            }
            List<Delivery> deliveries = recorder.awaitAtLeast(seq, Duration.ofSeconds(60));
            deliveries = recorder.awaitQuiet(Duration.ofSeconds(2));
            // The oversized message makes the broker close the channel; what was unconfirmed on it is
            // republished, so duplicates (same message id) are expected and only first deliveries count.
            List<Integer> seqs = new ArrayList<>();
            Set<String> firstIds = new HashSet<>();
            Pattern seqPattern = Pattern.compile("\"seq\":\\s*(\\d+)");
            for (Delivery d : deliveries) {
                if (firstIds.add(d.getProperties().getMessageId())) {
                    Matcher m = seqPattern.matcher(new String(d.getBody(), StandardCharsets.UTF_8));
                    assertThat(m.find()).isTrue();
                    seqs.add(Integer.parseInt(m.group(1)));
                }
            }
            FaultIT.report("poison rows (null payload, null id, invalid JSON, 2 MB over a 1 MB max_message_size) among 10 good ones: "
                    + (deliveries.size() - firstIds.size()) + " duplicate(s)");
            assertThat(seqs).as("every good row, in order").containsExactly(0, 1, 2, 3, 4, 5, 6, 7, 8, 9);

            Map<String, String> reasons = new LinkedHashMap<>();
            Progress.exactly("poison rows dead-lettered", 4, STALL, () -> deadLetters(reasons));
            assertThat(reasons.values()).anySatisfy(r -> assertThat(r).contains("payload column 'payload' is null"))
                    .anySatisfy(r -> assertThat(r).contains("event id column 'id' is null"))
                    .anySatisfy(r -> assertThat(r).contains("not valid JSON"))
                    .anySatisfy(r -> assertThat(r).contains("too large: the body has 20000").contains("bytes, RabbitMQ's max_message_size is 1048576"));
            assertThat(relay.supervisor().restarts()).as("poison does not stop the relay").isZero();
        }
        finally {
            ServerControl.setMaxMessageSize(maxMessageSize);
        }
    }

    @Test
    void lostOffsetWritePermissionStopsAcknowledgingAndHealsWhenGranted() throws Exception {
        String role = "offsets_" + Long.toHexString(System.nanoTime());
        db.execute("CREATE ROLE " + role + " LOGIN",
                "CREATE TABLE guarded_offsets (namespace text NOT NULL, offset_key bytea NOT NULL, offset_value bytea, "
                        + "updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (namespace, offset_key))",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON guarded_offsets TO " + role,
                // The lease lives beside the offsets and every offset write checks it, so the store's role needs it too.
                String.join(";\n", RelayFiles.relayRoleTables()),
                "GRANT SELECT, INSERT, UPDATE, DELETE ON outbox_relay_leases, outbox_relay_leases_members TO " + role);
        String exchange = broker.declareExchange("guarded", "topic");
        String queue = broker.declareQueue("guarded", exchange, "#");
        Map<String, String> config = config("guarded", exchange);
        config.put("debezium.source.offset.storage.postgres.user", role);
        config.put("debezium.source.offset.storage.postgres.table", "guarded_offsets");
        try (QueueRecorder recorder = broker.record(queue); RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            write("guarded-a", 200);
            recorder.awaitIds(committedIds("guarded-a"), Duration.ofSeconds(60));
            String before = awaitStableConfirmedFlush("guarded");

            db.execute("REVOKE INSERT, UPDATE ON guarded_offsets FROM " + role);
            write("guarded-b", 300);
            recorder.awaitIds(committedIds("guarded-b"), Duration.ofSeconds(60));
            Thread.sleep(3_000);
            assertThat(confirmedFlush("guarded")).as("the slot is not acknowledged past what is stored").isEqualTo(before);
            assertThat(relay.log()).contains("permission denied for table guarded_offsets", "GRANT");

            db.execute("GRANT INSERT, UPDATE ON guarded_offsets TO " + role);
            write("guarded-c", 200);
            Set<String> all = committedIds("guarded-");
            recorder.awaitIds(all, Duration.ofSeconds(60));
            await().atMost(Duration.ofSeconds(60)).until(() -> !confirmedFlush("guarded").equals(before));
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitQuiet(Duration.ofSeconds(2)), all);
            FaultIT.report("offset writes denied (REVOKE INSERT, UPDATE on the offset table), then granted again: " + check);
            assertThat(check.lost()).isZero();
            assertThat(check.orderViolations()).isEmpty();
        }
        finally {
            db.execute("DROP TABLE guarded_offsets", "DROP OWNED BY " + role, "DROP ROLE " + role);
        }
    }

    @Test
    void idleOutboxBesideABusyTableKeepsRetainedWalBounded() throws Exception {
        db.execute("CREATE TABLE busy (id bigserial PRIMARY KEY, filler text)");
        String exchange = broker.declareExchange("idle", "topic");
        Map<String, String> config = config("idle", exchange);
        config.put("debezium.source.heartbeat.interval.ms", "1000");
        try (RelayHarness relay = RelayHarness.start(db, dir, config); Connection c = db.connect(); Statement s = c.createStatement()) {
            long written = 0;
            long maxRetained = 0;
            // Bounded by WAL written as well as by time: a slow CI machine writes less in 30 s, and the
            // test is about retained WAL relative to written WAL, not about the machine's speed.
            long began = System.nanoTime();
            long minimum = System.nanoTime() + Duration.ofSeconds(20).toNanos();
            long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
            String start = currentLsn(s);
            while (System.nanoTime() < deadline && (System.nanoTime() < minimum || written < (256L << 20))) {
                s.execute("INSERT INTO busy (filler) SELECT repeat(md5(random()::text), 64) FROM generate_series(1, 2000)");
                s.execute("CHECKPOINT");
                maxRetained = Math.max(maxRetained, retained(s, "idle"));
                written = walSince(s, start);
            }
            long finalRetained = retained(s, "idle");
            FaultIT.report(String.format("idle outbox beside a busy table for %d s: %d MB of WAL written, slot retained at most %d MB, %d MB at the end",
                    Duration.ofNanos(System.nanoTime() - began).toSeconds(), written >> 20, maxRetained >> 20, finalRetained >> 20));
            assertThat(written).as("the busy table produced WAL").isGreaterThan(200L << 20);
            assertThat(finalRetained).as("the slot follows the heartbeats").isLessThan(128L << 20);
            assertThat(maxRetained).as("retained WAL does not grow with what is written").isLessThan(written / 3);
        }
    }

    @Test
    void aSecondRelayOnTheSameSlotRefusesToRunWithoutStandbys() throws Exception {
        String exchange = broker.declareExchange("twins", "topic");
        String queue = broker.declareQueue("twins", exchange, "#");
        Map<String, String> config = config("twins", exchange);
        // The behaviour before hot standbys, kept for those who want it (FailoverIT covers the default).
        config.put("relay.standby", "false");
        try (QueueRecorder recorder = broker.record(queue); RelayProcess first = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            await().atMost(Duration.ofSeconds(60)).until(() -> slotPid("twins") != null);
            Integer pid = slotPid("twins");
            try (RelayProcess second = RelayProcess.start(dir, config)) {
                await().atMost(Duration.ofSeconds(60)).until(() -> !second.isAlive());
                assertThat(second.stop()).isEqualTo(4);
                assertThat(second.log()).contains("replication slot twins is in use by another process, 'Debezium Streaming' connected from 127.0.0.1:",
                                "(served by PostgreSQL's walsender, PID " + pid + ")", "Refusing to start a second one")
                        .doesNotContain("Relay 'twins' started").doesNotContain("Exception");
            }
            assertThat(slotPid("twins")).as("the first relay kept its slot").isEqualTo(pid);
            write("twins", 100);
            assertThat(DeliveryCheck.of(recorder.awaitIds(committedIds("twins"), Duration.ofSeconds(30)), committedIds("twins")).lost()).isZero();
        }
    }

    private static void write(String prefix, int events) throws Exception {
        try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", prefix, 5, events, 0)) {
            writer.awaitDone(STALL);
        }
    }

    private static Set<String> committedIds(String prefix) throws Exception {
        return OutboxWriter.committedIds(db::connect, "outbox_event", prefix);
    }

    private static int deadLetters(Map<String, String> reasons) throws Exception {
        reasons.clear();
        try (Connection c = db.connect(); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT coalesce(event_id, '(none)') || ' #' || id, reason FROM outbox_relay_dead_letter WHERE relay_name = 'poison'")) {
            while (rs.next()) {
                reasons.put(rs.getString(1), rs.getString(2));
            }
        }
        return reasons.size();
    }

    private static String confirmedFlush(String slot) throws Exception {
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = ?")) {
            ps.setString(1, slot);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getString(1);
            }
        }
    }

    /** Waits until the slot's confirmed position has stopped moving (the last offset flush reached the server). */
    private static String awaitStableConfirmedFlush(String slot) throws Exception {
        String previous = confirmedFlush(slot);
        while (true) {
            Thread.sleep(1_500);
            String now = confirmedFlush(slot);
            if (now.equals(previous)) {
                return now;
            }
            previous = now;
        }
    }

    private static Integer slotPid(String slot) throws Exception {
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement("SELECT active_pid FROM pg_replication_slots WHERE slot_name = ?")) {
            ps.setString(1, slot);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                int pid = rs.getInt(1);
                return rs.wasNull() ? null : pid;
            }
        }
    }

    private static long walSince(Statement s, String start) throws Exception {
        try (ResultSet rs = s.executeQuery("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '" + start + "')::bigint")) {
            rs.next();
            return rs.getLong(1);
        }
    }

    private static String currentLsn(Statement s) throws Exception {
        try (ResultSet rs = s.executeQuery("SELECT pg_current_wal_lsn()::text")) {
            rs.next();
            return rs.getString(1);
        }
    }

    private static long retained(Statement s, String slot) throws Exception {
        try (ResultSet rs = s.executeQuery("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = '" + slot + "'")) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
