package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.StringReader;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.postgresql.PGConnection;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.GetResponse;

import io.outboxrelay.testing.Progress;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/**
 * The two places Debezium 3.6.1 resumes from wrongly, reached on purpose and then restarted from:
 * a stored offset at a row inside a {@code COPY} group (rows sharing one LSN, dbz#1554), and a stored
 * commit position whose end a concurrent transaction's row starts at (dbz#76/#51). Each test first
 * proves that the case it means was really reached (the rows' LSNs from a {@code test_decoding}
 * slot, the WAL records' bounds from {@code pg_walinspect}), so it cannot pass by missing it.
 */
class ResumePositionIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int COPY_ROWS = 100;
    /** How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. */
    private static final Duration STALL = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    @BeforeAll
    static void tables() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
    }

    private static Map<String, String> config(String name, String exchange) {
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, name);
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("relay.standby", "false");
        config.put("debezium.source.offset.flush.interval.ms", "50");
        config.put("relay.restart.backoff.initial.ms", "200");
        config.put("relay.restart.backoff.max.ms", "500");
        return config;
    }

    /**
     * One transaction: a COPY of 100 rows (one WAL record, and so one LSN, per heap page) and an
     * INSERT after it, written while the relay is stopped. The queue is then made to take only the
     * rows up to the first, a middle or the last row of the largest group sharing an LSN and to
     * refuse the rest (nacks), so the relay stores the offset of that row and stands there. It is
     * killed, the queue freed, the relay started again: every row after it must come, and none
     * before it again.
     */
    @ParameterizedTest(name = "stored after the {0} row of a COPY group")
    @ValueSource(strings = { "first", "middle", "last" })
    void aRestartAfterAnyRowOfACopyGroupSendsTheRestOfIt(String which) throws Exception {
        String name = "copy-" + which;
        String exchange = broker.declareExchange(name, "topic");
        String queue = broker.uniqueName(name);
        Map<String, String> config = config(name, exchange);
        String peekSlot = name.replace('-', '_') + "_peek";
        RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60)).kill();
        db.execute("SELECT pg_create_logical_replication_slot('" + peekSlot + "', 'test_decoding')");
        List<String> ids = new ArrayList<>();
        List<Long> lsns;
        try {
            try (Connection c = db.connect()) {
                c.setAutoCommit(false);
                StringBuilder rows = new StringBuilder();
                for (int i = 0; i < COPY_ROWS; i++) {
                    String id = UUID.randomUUID().toString();
                    ids.add(id);
                    rows.append(id).append("\torder\t").append(name).append("\tT\t{\"agg\": \"").append(name).append("\", \"seq\": ").append(i).append("}\n");
                }
                c.unwrap(PGConnection.class).getCopyAPI().copyIn("COPY outbox_event (id, aggregatetype, aggregateid, type, payload) FROM STDIN",
                        new StringReader(rows.toString()));
                ids.add(insert(c, name, COPY_ROWS));
                c.commit();
            }
            lsns = lsnsOf(peekSlot, ids);
        }
        finally {
            db.execute("SELECT pg_drop_replication_slot('" + peekSlot + "')");
        }
        // The largest run of rows sharing one LSN: a COPY group, the case this test is about.
        int groupStart = 0;
        int groupSize = 0;
        int run = 0;
        for (int i = 0; i < lsns.size(); i++) {
            run++;
            if (i + 1 == lsns.size() || !lsns.get(i + 1).equals(lsns.get(i))) {
                if (run > groupSize) {
                    groupSize = run;
                    groupStart = i + 1 - run;
                }
                run = 0;
            }
        }
        assertThat(groupSize).as("rows of the COPY sharing one LSN").isGreaterThanOrEqualTo(10);
        int k = switch (which) {
            case "first" -> groupStart + 1;
            case "middle" -> groupStart + groupSize / 2;
            default -> groupStart + groupSize;
        };
        try (com.rabbitmq.client.Connection amqp = broker.newConnection(); Channel ch = amqp.createChannel()) {
            ch.queueDeclare(queue, true, false, false, Map.of("x-max-length", k, "x-overflow", "reject-publish"));
            ch.queueBind(queue, exchange, "#");
        }
        try (RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            Progress.exactly("messages in the queue that takes " + k, k, STALL, () -> messages(queue));
            // The relay now publishes row k+1 again and again with back-off; many flush intervals pass, so row k's offset is stored.
            Thread.sleep(2_000);
            assertThat(messages(queue)).as("the queue takes no more than k").isEqualTo(k);
            relay.kill();
        }
        assertThat(drain(queue)).containsExactlyElementsOf(ids.subList(0, k));
        try (com.rabbitmq.client.Connection amqp = broker.newConnection(); Channel ch = amqp.createChannel()) {
            ch.queueDelete(queue);
            ch.queueDeclare(queue, true, false, false, null);
            ch.queueBind(queue, exchange, "#");
        }
        try (QueueRecorder recorder = broker.record(queue); RelayProcess again = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            recorder.awaitIds(new HashSet<>(ids.subList(k, ids.size())), Duration.ofSeconds(30));
            List<String> after = recorder.awaitQuiet(Duration.ofSeconds(1)).stream().map(d -> d.getProperties().getMessageId()).toList();
            assertThat(after).as("rows " + (k + 1) + "… (of a group of " + groupSize + " from row " + (groupStart + 1) + ") after the restart, none before")
                    .containsExactlyElementsOf(ids.subList(k, ids.size()));
            assertThat(again.log()).contains("left out");
        }
    }

    /**
     * dbz#76/#51: the stored offset is the commit position C of transaction T1 (stored from a
     * heartbeat) while T2 is open, and T2's next row was written exactly at C. Debezium 3.6.1, resuming
     * from C with its search, would take that row for the stored position and drop T2's rows up to it.
     */
    @Test
    void aRestartFromACommitPositionThatAnOpenTransactionsRowStartsAtSendsThatTransactionWhole() throws Exception {
        String name = "commit-match";
        String exchange = broker.declareExchange(name, "topic");
        String queue = broker.declareQueue(name, exchange, "#");
        Map<String, String> config = config(name, exchange);
        config.put("debezium.source.heartbeat.interval.ms", "100");
        // No WAL from the heartbeat itself: the positions below must stay where this test puts them.
        config.put("debezium.source.heartbeat.action.query", "SELECT 1");
        db.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect");
        RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60)).kill();

        Set<String> expected = new HashSet<>();
        long commitEnd;
        try (Connection t2 = db.connect(); Connection t1 = db.connect(); QueueRecorder recorder = broker.record(queue)) {
            t2.setAutoCommit(false);
            for (int i = 0; i < 3; i++) {
                expected.add(insert(t2, name + "-t2", i));
            }
            long t2xid = xid(t2);
            commitEnd = -1;
            for (int attempt = 0; attempt < 50 && commitEnd < 0; attempt++) {
                String start = currentLsn(t1);
                expected.add(insert(t1, name + "-t1-" + attempt, 0));
                expected.add(insert(t2, name + "-t2", 3 + attempt));
                commitEnd = adjacentCommitEnd(t1, start, t2xid);
            }
            assertThat(commitEnd).as("a T1 commit whose end is where T2's next row starts (PostgreSQL wrote nothing between)").isPositive();

            RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
            long stored = commitEnd;
            Progress.exactly("the stored offset's LSN", stored, STALL, () -> storedLsn(name));
            relay.kill();
            t2.commit();
            try (RelayProcess again = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
                Set<String> seen = new HashSet<>();
                recorder.awaitIds(expected, Duration.ofSeconds(30)).forEach(d -> seen.add(d.getProperties().getMessageId()));
                assertThat(seen).containsAll(expected);
            }
        }
    }

    private static String insert(Connection c, String aggregate, int seq) throws SQLException {
        String id = UUID.randomUUID().toString();
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO outbox_event (id, aggregatetype, aggregateid, type, payload) "
                + "VALUES (?::uuid, 'order', ?, 'T', ?::jsonb)")) {
            ps.setString(1, id);
            ps.setString(2, aggregate);
            ps.setString(3, "{\"agg\": \"" + aggregate + "\", \"seq\": " + seq + "}");
            ps.executeUpdate();
        }
        return id;
    }

    private static long xid(Connection c) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT txid_current() % 4294967296")) {
            rs.next();
            return rs.getLong(1);
        }
    }

    private static String currentLsn(Connection c) throws SQLException {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT pg_current_wal_insert_lsn()::text")) {
            rs.next();
            return rs.getString(1);
        }
    }

    /**
     * The end of the last commit record after {@code start} when the next record is a heap insert of
     * {@code xid}; -1 otherwise. The WAL is switched first so that pg_walinspect may read the open
     * transaction's records (it reads only what is flushed); the switch record comes after them.
     */
    private static long adjacentCommitEnd(Connection c, String start, long xid) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("SELECT pg_switch_wal()");
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT r.end_lsn - '0/0'::pg_lsn FROM pg_get_wal_records_info(?::pg_lsn, pg_current_wal_flush_lsn()) r "
                + "JOIN pg_get_wal_records_info(?::pg_lsn, pg_current_wal_flush_lsn()) n ON n.start_lsn = r.end_lsn "
                + "WHERE r.resource_manager = 'Transaction' AND r.record_type = 'COMMIT' AND n.resource_manager = 'Heap' "
                + "AND n.record_type LIKE 'INSERT%' AND n.xid::text::bigint = ? ORDER BY r.end_lsn DESC LIMIT 1")) {
            ps.setString(1, start);
            ps.setString(2, start);
            ps.setLong(3, xid);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getLong(1) : -1;
            }
        }
    }

    private static long storedLsn(String namespace) throws Exception {
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement(
                "SELECT convert_from(offset_value, 'UTF8') FROM outbox_relay_offsets WHERE namespace = ?")) {
            ps.setString(1, namespace);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? JSON.readTree(rs.getString(1)).path("lsn").asLong(-1) : -1;
            }
        }
    }

    /** The LSN of each of {@code ids}' rows, as the {@code test_decoding} slot decodes them. */
    private static List<Long> lsnsOf(String slot, List<String> ids) throws SQLException {
        Map<String, Long> byId = new java.util.HashMap<>();
        try (Connection c = db.connect(); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
                "SELECT lsn - '0/0'::pg_lsn, substring(data from 'id\\[uuid\\]:''([^'']+)''') FROM pg_logical_slot_peek_changes('" + slot
                        + "', NULL, NULL) WHERE data LIKE 'table public.outbox_event: INSERT%'")) {
            while (rs.next()) {
                byId.put(rs.getString(2), rs.getLong(1));
            }
        }
        List<Long> lsns = new ArrayList<>();
        for (String id : ids) {
            assertThat(byId).as("the row of " + id + " was decoded").containsKey(id);
            lsns.add(byId.get(id));
        }
        return lsns;
    }

    private static int messages(String queue) throws Exception {
        try (com.rabbitmq.client.Connection amqp = broker.newConnection(); Channel ch = amqp.createChannel()) {
            return ch.queueDeclarePassive(queue).getMessageCount();
        }
    }

    /** Takes every message of {@code queue}; their ids in queue order. */
    private static Set<String> drain(String queue) throws Exception {
        Set<String> ids = new LinkedHashSet<>();
        try (com.rabbitmq.client.Connection amqp = broker.newConnection(); Channel ch = amqp.createChannel()) {
            for (GetResponse r = ch.basicGet(queue, true); r != null; r = ch.basicGet(queue, true)) {
                ids.add(r.getProps().getMessageId());
            }
        }
        return ids;
    }
}
