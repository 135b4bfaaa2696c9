package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.client.Delivery;

import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.Progress;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/**
 * Rows of 10, 40 and 100 MB between ordinary ones, through the shipped launcher and its heap: the
 * process stays up, what fits under {@code max.message.bytes} is delivered, what does not is parked
 * with its size, and nothing after them is held back.
 */
class LargeRowsIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    private static final int MB = 1024 * 1024;
    /** How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. */
    private static final Duration STALL = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    @BeforeAll
    static void outbox() throws Exception {
        db.execute("CREATE TABLE big_outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype varchar(255) NOT NULL, "
                + "aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload text)");
    }

    @Test
    void largeRowsAreDeliveredOrParkedAndNothingAfterThemWaits() throws Exception {
        String exchange = broker.declareExchange("big", "topic");
        String queue = broker.declareQueue("big", exchange, "#");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "big");
        config.put("debezium.source.table.include.list", "public.big_outbox");
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        try (QueueRecorder recorder = broker.record(queue); RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            List<String> expectedSmall = new ArrayList<>();
            Map<Integer, String> large = new LinkedHashMap<>();
            int seq = 0;
            long started = System.nanoTime();
            try (Connection c = db.connect()) {
                for (int size : new int[] { 10 * MB, 40 * MB, 100 * MB }) {
                    expectedSmall.add(insertSmall(c, seq++));
                    // An aggregate of its own: with relay.dead-letter.order=keep-aggregate (the default) the small events of its aggregate
                    // would wait parked behind a large one that is parked (DeadLetterOrderIT).
                    large.put(size, insert(c, "big-" + size, "repeat('x', " + size + ")"));
                }
                for (int i = 0; i < 5; i++) {
                    expectedSmall.add(insertSmall(c, seq++));
                }
            }
            List<Delivery> deliveries = recorder.awaitAtLeast(expectedSmall.size() + 1, Duration.ofSeconds(120));
            deliveries = recorder.awaitQuiet(Duration.ofSeconds(2));
            long tookMillis = (System.nanoTime() - started) / 1_000_000;

            List<String> small = new ArrayList<>();
            int tenMbBodies = 0;
            for (Delivery d : deliveries) {
                if (d.getBody().length == 10 * MB) {
                    tenMbBodies++;
                    assertThat(d.getProperties().getMessageId()).isEqualTo(large.get(10 * MB));
                }
                else if (!small.contains(d.getProperties().getMessageId())) {
                    small.add(d.getProperties().getMessageId());
                }
            }
            assertThat(small).as("every ordinary row, in order, none held back by the large ones").containsExactlyElementsOf(expectedSmall);
            assertThat(tenMbBodies).as("the 10 MB row, under max.message.bytes, is delivered").isGreaterThanOrEqualTo(1);

            Map<String, String> parked = new LinkedHashMap<>();
            Progress.until("the 40 and 100 MB rows parked", STALL, () -> {
                parked.clear();
                parked.putAll(deadLetters("big"));
                return parked.size();
            }, n -> parked.containsKey(large.get(40 * MB)) && parked.containsKey(large.get(100 * MB)));
            assertThat(parked.get(large.get(40 * MB))).contains("too large: the body has " + 40 * MB + " bytes, more than "
                    + "debezium.sink.rabbitmq.max.message.bytes (16777216)");
            assertThat(parked.get(large.get(100 * MB))).contains("the body has " + 100 * MB + " bytes");
            assertThat(parkedPayloadBytes(large.get(100 * MB))).as("the parked row keeps its payload").isEqualTo(100L * MB);
            assertThat(relay.isAlive()).as("the relay stayed up").isTrue();
            assertThat(relay.log()).doesNotContain("OutOfMemoryError");
            FaultIT.report(String.format("rows of 10, 40 and 100 MB among 8 ordinary ones, shipped launcher: 10 MB delivered, 40 and 100 MB parked, "
                    + "ordinary rows in order, all done in %.1f s; peak RSS %d MB", tookMillis / 1000.0, relay.peakRssBytes() / MB));
        }
    }

    private static String insertSmall(Connection c, int seq) throws Exception {
        return insert(c, "big", "'{\"agg\": \"big\", \"seq\": " + seq + "}'");
    }

    private static String insert(Connection c, String aggregate, String payloadSql) throws Exception {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO big_outbox (aggregatetype, aggregateid, type, payload) VALUES ('order', ?, 'T', "
                + payloadSql + ") RETURNING id::text")) {
            ps.setString(1, aggregate);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getString(1);
            }
        }
    }

    private static Map<String, String> deadLetters(String relay) throws Exception {
        Map<String, String> reasons = new LinkedHashMap<>();
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement("SELECT event_id, reason FROM outbox_relay_dead_letter WHERE relay_name = ?")) {
            ps.setString(1, relay);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    reasons.put(rs.getString(1), rs.getString(2));
                }
            }
        }
        return reasons;
    }

    private static long parkedPayloadBytes(String eventId) throws Exception {
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement("SELECT octet_length(payload) FROM outbox_relay_dead_letter WHERE event_id = ?")) {
            ps.setString(1, eventId);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

}
