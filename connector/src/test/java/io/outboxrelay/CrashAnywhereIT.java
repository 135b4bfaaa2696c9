package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import io.outboxrelay.testing.DeliveryCheck;
import io.outboxrelay.testing.MixedWriter;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.StreamedMessage;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;
import io.outboxrelay.testing.TestStreams;

/**
 * The relay killed with SIGKILL at random moments — starting, catching up, streaming, flushing
 * offsets — while four sessions write transactions of every shape ({@link MixedWriter}: single
 * rows, batches, multi-row VALUES, COPY, rows beside another table's, logical messages), with
 * offsets flushed every 50 ms and a heartbeat at nearly every commit, so that the stored position
 * lands inside COPY groups, at commit positions with concurrent transactions open and everywhere
 * else. An independent consumer then checks every committed event: none lost, first deliveries in
 * per-aggregate order, duplicates bounded (into a stream: none). The number of kills comes from
 * {@code OUTBOX_RELAY_CRASH_KILLS} (default 15) and the seed from {@code OUTBOX_RELAY_CRASH_SEED}
 * (default: the clock, printed in {@code target/crash-report.txt} to repeat a run).
 */
@Tag("storm")
class CrashAnywhereIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();
    @RegisterExtension
    static final TestStreams streams = new TestStreams();

    private static final int KILLS = Integer.parseInt(System.getenv().getOrDefault("OUTBOX_RELAY_CRASH_KILLS", "15"));
    private static final int SESSIONS = 4;
    private static final int PER_SECOND = 400;
    /** What one kill may repeat over AMQP: the confirm window at most, in practice what was confirmed in the last 50 ms. */
    private static final int REPEATS_PER_KILL = 1_000;

    @TempDir
    Path dir;

    @BeforeAll
    static void tables() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL, MixedWriter.OTHER_DDL);
    }

    /** Offsets every 50 ms and a heartbeat at nearly every commit: stored positions everywhere. */
    private static Map<String, String> crashConfig(Map<String, String> config) {
        config.put("relay.standby", "false");
        config.put("debezium.source.offset.flush.interval.ms", "50");
        config.put("debezium.source.heartbeat.interval.ms", "20");
        config.put("relay.restart.backoff.initial.ms", "200");
        config.put("relay.restart.backoff.max.ms", "1000");
        return config;
    }

    @Test
    void killedAnywhereIntoAnExchangeItLosesNothing() throws Exception {
        String name = "crash-amqp";
        String exchange = broker.declareExchange(name, "topic");
        String queue = broker.declareQueue(name, exchange, "#");
        Map<String, String> config = crashConfig(RelayFiles.minimalConfig(db, broker, name));
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        try (QueueRecorder recorder = broker.record(queue); Storm storm = storm(name, config)) {
            Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", name);
            recorder.awaitIds(committed, Duration.ofSeconds(180));
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitQuiet(Duration.ofSeconds(2)), committed);
            report(name, storm, check);
            assertThat(check.lost()).as("nothing lost: " + check + " (seed " + storm.seed + ")").isZero();
            assertThat(check.orderViolations()).as("first deliveries in per-aggregate order (seed " + storm.seed + ")").isEmpty();
            assertThat(check.duplicates()).as("duplicates bounded by what was in flight at each kill").isLessThanOrEqualTo(storm.kills * REPEATS_PER_KILL);
            assertThat(storm.last.log()).as("the slot never ran ahead of the stored offset").doesNotContain("ahead of the stored offset");
        }
    }

    @Test
    void killedAnywhereIntoAStreamItLosesAndRepeatsNothing() throws Exception {
        String name = "crash-stream";
        String stream = streams.uniqueName(name, 0);
        Map<String, String> config = RelayFiles.intoStream(crashConfig(RelayFiles.minimalConfig(db, broker, name)), streams.server().host(),
                streams.server().port(), broker.server().user(), broker.server().password(), stream);
        try (Storm storm = storm(name, config)) {
            Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", name);
            List<StreamedMessage> messages = streams.readAll(stream, committed.size(), Duration.ofSeconds(3), Duration.ofSeconds(180));
            DeliveryCheck check = DeliveryCheck.ofStream(messages, committed);
            report(name, storm, check);
            assertThat(check.lost()).as("nothing lost: " + check + " (seed " + storm.seed + ")").isZero();
            assertThat(check.duplicates()).as("nothing twice in the stream: " + check + " (seed " + storm.seed + ")").isZero();
            assertThat(check.orderViolations()).as("per-aggregate order (seed " + storm.seed + ")").isEmpty();
            assertThat(storm.last.log()).as("the slot never ran ahead of the stored offset").doesNotContain("ahead of the stored offset");
        }
    }

    /** What the storm did; {@code last} is the relay left running to deliver the rest. */
    private record Storm(long seed, int kills, int killedStreaming, Map<MixedWriter.Shape, Integer> shapes, RelayProcess last) implements AutoCloseable {
        @Override
        public void close() throws InterruptedException {
            last.close();
        }
    }

    /** Writes while the relay is started and SIGKILLed {@link #KILLS} times at random moments, then lets one relay finish. */
    private Storm storm(String name, Map<String, String> config) throws Exception {
        long seed = Long.parseLong(System.getenv().getOrDefault("OUTBOX_RELAY_CRASH_SEED", Long.toString(System.nanoTime())));
        Random random = new Random(seed);
        int killedStreaming = 0;
        Map<MixedWriter.Shape, Integer> shapes;
        // The slot first: what is committed before it exists is not the relay's to send (and it says so).
        RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
        try (MixedWriter writer = MixedWriter.start(db::connect, "outbox_event", name, SESSIONS, PER_SECOND, seed)) {
            for (int k = 0; k < KILLS; k++) {
                if (relay == null) {
                    relay = RelayProcess.start(dir, config);
                }
                // From its first instruction to well into streaming: start-up (about 2 s here) is a moment like any other.
                Thread.sleep(300 + random.nextInt(3_700));
                if (relay.get("/q/health/ready").status() == 200) {
                    killedStreaming++;
                }
                relay.kill();
                assertThat(relay.log()).as("the slot never runs ahead of the stored offset").doesNotContain("ahead of the stored offset");
                relay = null;
                assertThat(writer.failure()).as("the writer").isNull();
            }
            shapes = writer.eventsByShape();
        }
        assertThat(shapes.values().stream().allMatch(n -> n > 0)).as("every shape was written: " + shapes).isTrue();
        return new Storm(seed, KILLS, killedStreaming, shapes, RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60)));
    }

    private void report(String name, Storm storm, DeliveryCheck check) throws Exception {
        String server;
        try (Connection c = db.connect(); Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SHOW server_version")) {
            rs.next();
            server = rs.getString(1);
        }
        String line = name + " on PostgreSQL " + server + ": " + storm.kills + " SIGKILLs (" + storm.killedStreaming + " while streaming), seed "
                + storm.seed + ", events by shape " + storm.shapes + ": " + check + System.lineSeparator();
        System.out.print(line);
        Path report = Path.of(System.getProperty("user.dir"), "target", "crash-report.txt");
        Files.createDirectories(report.getParent());
        Files.writeString(report, line, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    }
}
