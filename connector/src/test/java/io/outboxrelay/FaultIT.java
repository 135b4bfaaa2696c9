package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.client.Delivery;

import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.DeliveryCheck;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ServerControl;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/**
 * Real faults under a steady stream, against the relay as a process of its own: each test writes
 * events while it kills, restarts, cuts or blocks something for real, then checks with an
 * independent consumer that every committed event arrived, that first deliveries kept
 * per-aggregate order, and how many duplicates appeared. Each outcome is also appended to
 * {@code target/fault-report.txt}.
 */
class FaultIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    private static final int EVENTS = 3_000;
    private static final int PER_SECOND = 500;
    private static final int WINDOW = 1_000;
    /** A crash can repeat the window and what was confirmed since the last offset flush (100 ms of 500/s, with room to spare). */
    private static final int SINCE_FLUSH = 500;
    /**
     * How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. Long here:
     * a restarted server and the reconnections after it hold counts still on purpose.
     */
    private static final Duration STALL = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    @BeforeAll
    static void outbox() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
    }

    private interface Fault {
        /** Injects the fault; returns the relay process that runs afterwards (the same one, or its replacement). */
        RelayProcess inject(RelayProcess relay, Map<String, String> config) throws Exception;
    }

    private record Outcome(DeliveryCheck check, long stallMillis) {
    }

    @Test
    void relayKilledWithSigkillAndStartedAgain() throws Exception {
        Outcome outcome = streamThrough("killed", "relay process killed (SIGKILL) and started again", (relay, config) -> {
            relay.kill();
            return RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
        });
        assertThat(outcome.check().duplicates()).as("duplicates within the window plus what came since the last flush").isLessThanOrEqualTo(WINDOW + SINCE_FLUSH);
    }

    /**
     * Batches return before their confirms arrive; the tail they leave must still be marked and its
     * offset stored while the outbox is quiet. Heartbeats are off here, so nothing but the sink
     * itself can finish that tail before the kill.
     */
    @Test
    void relayKilledAfterAQuietMomentRepublishesNothing() throws Exception {
        String relayName = "quiet-kill";
        String exchange = broker.declareExchange(relayName, "topic");
        String queue = broker.declareQueue(relayName, exchange, "#");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, relayName);
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("debezium.source.heartbeat.interval.ms", "0");
        RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
        try (QueueRecorder recorder = broker.record(queue)) {
            try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", relayName + "-a", 20, 1_000, 1_000)) {
                writer.awaitDone(STALL);
            }
            recorder.awaitIds(committedIds(relayName + "-a"), Duration.ofSeconds(60));
            Thread.sleep(1_500);
            relay.kill();
            relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
            try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", relayName + "-b", 20, 100, 1_000)) {
                writer.awaitDone(STALL);
            }
            Set<String> committed = committedIds(relayName);
            assertThat(committed).hasSize(1_100);
            recorder.awaitIds(committed, Duration.ofSeconds(60));
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitQuiet(Duration.ofSeconds(2)), committed);
            report("relay killed (SIGKILL) after 1.5 s without events, heartbeats off: " + check);
            assertThat(check.lost()).as("nothing lost: " + check).isZero();
            assertThat(check.duplicates()).as("nothing republished: the quiet tail was marked and stored before the kill").isZero();
        }
        finally {
            relay.close();
        }
    }

    @Test
    void rabbitMqRestarted() throws Exception {
        streamThrough("rabbit-restart", "RabbitMQ restarted (stop_app, 3 s, start_app)", (relay, config) -> {
            ServerControl.restartRabbitMq(Duration.ofSeconds(3));
            return relay;
        });
    }

    @Test
    void brokerClosesTheRelaysConnection() throws Exception {
        streamThrough("conn-closed", "broker closed the relay's connection (rabbitmqctl close_connection)", (relay, config) -> {
            assertThat(ServerControl.closeBrokerConnections("outbox-relay conn-closed")).as("the relay's connection was found").isEqualTo(1);
            return relay;
        });
    }

    @Test
    void walsenderTerminated() throws Exception {
        streamThrough("walsender-cut", "replication connection terminated (pg_terminate_backend on the walsender)", (relay, config) -> {
            try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement(
                    "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = ? AND active")) {
                ps.setString(1, "walsender_cut");
                try (ResultSet rs = ps.executeQuery()) {
                    assertThat(rs.next() && rs.getBoolean(1)).as("the walsender was terminated").isTrue();
                }
            }
            return relay;
        });
    }

    @Test
    void postgresRestarted() throws Exception {
        streamThrough("pg-restart", "PostgreSQL restarted (fast stop, 2 s, start)", (relay, config) -> {
            ServerControl.stopPostgres();
            Thread.sleep(2_000);
            ServerControl.startPostgres();
            return relay;
        });
    }

    @Test
    void brokerResourceAlarmBlocksAndClears() throws Exception {
        streamThrough("alarm", "RabbitMQ memory alarm (connection blocked for 3 s)", (relay, config) -> {
            String watermark = ServerControl.raiseMemoryAlarm();
            try {
                // RabbitMQ blocks a connection only when it next publishes; on a slow machine the writer can have finished
                // (and everything been published) by the time rabbitmqctl has raised the alarm, so one more event, outside
                // the relay's committed set, makes sure the relay publishes while the alarm is up.
                RelayHarness.insert(db, new String[] { "order", "probe-alarm", "OrderPlaced", "{\"probe\": true}" });
                await().atMost(Duration.ofSeconds(60)).untilAsserted(() ->
                        assertThat(relay.get("/q/health/ready").body()).contains("RabbitMQ blocks publishing"));
                Thread.sleep(3_000);
            }
            finally {
                ServerControl.clearMemoryAlarm(watermark);
            }
            return relay;
        });
    }

    private Outcome streamThrough(String relayName, String fault, Fault action) throws Exception {
        String exchange = broker.declareExchange(relayName, "topic");
        String queue = broker.declareQueue(relayName, exchange, "#");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, relayName);
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("debezium.sink.rabbitmq.max.in.flight", Integer.toString(WINDOW));
        config.put("relay.restart.backoff.initial.ms", "200");
        config.put("relay.restart.backoff.max.ms", "2000");
        RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
        try (QueueRecorder recorder = broker.record(queue);
                OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", relayName, 20, EVENTS, PER_SECOND)) {
            recorder.awaitAtLeast(EVENTS / 4, Duration.ofSeconds(60));
            long faultAt = System.nanoTime();
            relay = action.inject(relay, config);
            long faultMillis = (System.nanoTime() - faultAt) / 1_000_000;
            writer.awaitDone(STALL);
            Set<String> committed = committedIds(relayName);
            assertThat(committed).hasSize(EVENTS);
            recorder.awaitIds(committed, Duration.ofSeconds(180));
            List<Delivery> deliveries = recorder.awaitQuiet(Duration.ofSeconds(2));
            long stall = longestGapAfter(recorder.arrivalNanos(), faultAt);
            DeliveryCheck check = DeliveryCheck.of(deliveries, committed);
            report(fault + ": " + check + ", injecting took " + faultMillis + " ms, longest delivery gap " + stall + " ms");
            assertThat(check.lost()).as("nothing lost: " + check).isZero();
            assertThat(check.orderViolations()).as("per-aggregate order of first deliveries").isEmpty();
            assertThat(relay.isAlive()).as("the relay healed without a human").isTrue();
            return new Outcome(check, stall);
        }
        finally {
            relay.close();
        }
    }

    private static Set<String> committedIds(String prefix) throws Exception {
        return OutboxWriter.committedIds(db::connect, "outbox_event", prefix + "-");
    }

    /** The longest pause between two deliveries after the fault: how long the stream stood still. */
    static long longestGapAfter(List<Long> arrivals, long faultAt) {
        long previous = faultAt;
        long longest = 0;
        for (long t : arrivals) {
            if (t > faultAt) {
                longest = Math.max(longest, t - previous);
                previous = t;
            }
        }
        return longest / 1_000_000;
    }

    static void report(String line) throws IOException {
        System.out.println("FAULT " + line);
        Files.writeString(Path.of("target", "fault-report.txt"), line + System.lineSeparator(), StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }
}
