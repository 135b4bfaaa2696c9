package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
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
import io.outboxrelay.testing.Progress;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ServerControl;
import io.outboxrelay.testing.StallingProxy;
import io.outboxrelay.testing.StreamedMessage;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;
import io.outboxrelay.testing.TestStreams;

/**
 * Exactly once into a stream under faults that leave the relay process running, so that the
 * stream client and Debezium recover inside it: stream connections cut again and again at 3,000
 * events a second (the client's own recovery must not send what it still held ahead of what the
 * relay publishes again), and the walsender terminated and PostgreSQL restarted under load (no
 * restart of Debezium's task in place may number the events it sends again anew). Four sessions
 * write every shape of transaction; a consumer of its own reads the whole stream back: none lost,
 * none twice, per-aggregate order. The random moments come from {@code OUTBOX_RELAY_CRASH_SEED}
 * when it is set.
 */
@Tag("storm")
class StreamFaultsIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();
    @RegisterExtension
    static final TestStreams streams = new TestStreams();

    private static final int SESSIONS = 4;
    private static final int CUTS = 20;
    /**
     * How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. Long here:
     * PostgreSQL restarted and connections cut on purpose hold counts still while the relay recovers.
     */
    private static final Duration STALL = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    @BeforeAll
    static void tables() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL, MixedWriter.OTHER_DDL);
    }

    private interface Faults {
        String inject(RelayProcess relay, Random random) throws Exception;
    }

    @Test
    void streamConnectionsCutTwentyTimesAt3000ASecondLoseAndRepeatNothing() throws Exception {
        try (StallingProxy proxy = StallingProxy.start(streams.server().host(), streams.server().port())) {
            check("stream-cuts", 3_000, proxy, (relay, random) -> {
                int cuts = 0;
                long lastCut = System.nanoTime();
                while (cuts < CUTS && System.nanoTime() - lastCut < STALL.toNanos()) {
                    // Between 0.2 and 1.5 s: sometimes while the client still recovers from the last cut, mostly while it streams.
                    Thread.sleep(200 + random.nextInt(1_300));
                    if (proxy.cut() > 0) {
                        cuts++;
                        lastCut = System.nanoTime();
                    }
                }
                assertThat(cuts).as("connections cut").isEqualTo(CUTS);
                return cuts + " cuts of every stream connection (TCP reset through a proxy)";
            });
        }
    }

    @Test
    void walsenderTerminatedAndPostgresRestartedUnderLoadLoseAndRepeatNothing() throws Exception {
        check("stream-source", 1_000, null, (relay, random) -> {
            int terminated = 0;
            for (int i = 0; i < 6; i++) {
                Thread.sleep(1_000 + random.nextInt(2_000));
                // The walsender is back only once the relay has restarted the engine.
                await().atMost(Duration.ofSeconds(60)).until(() -> terminateWalsender("stream_source"));
                terminated++;
            }
            Thread.sleep(1_000 + random.nextInt(2_000));
            ServerControl.stopPostgres();
            Thread.sleep(2_000);
            ServerControl.startPostgres();
            await().atMost(Duration.ofSeconds(60)).until(() -> relay.get("/q/health/ready").status() == 200);
            Thread.sleep(3_000);
            return terminated + " walsender terminations and a PostgreSQL restart";
        });
    }

    private void check(String name, int perSecond, StallingProxy proxy, Faults faults) throws Exception {
        long seed = Long.parseLong(System.getenv().getOrDefault("OUTBOX_RELAY_CRASH_SEED", Long.toString(System.nanoTime())));
        Random random = new Random(seed);
        String stream = streams.uniqueName(name, 0);
        Map<String, String> config = RelayFiles.intoStream(RelayFiles.minimalConfig(db, broker, name),
                proxy == null ? streams.server().host() : proxy.host(), proxy == null ? streams.server().port() : proxy.port(),
                broker.server().user(), broker.server().password(), stream);
        config.put("relay.standby", "false");
        config.put("relay.restart.backoff.initial.ms", "200");
        config.put("relay.restart.backoff.max.ms", "1000");
        config.put("debezium.sink.rabbitmqstream.producer.confirmTimeout", "5");
        String done;
        Map<MixedWriter.Shape, Integer> written;
        int outages;
        try (RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            try (MixedWriter writer = MixedWriter.start(db::connect, "outbox_event", name, SESSIONS, perSecond, seed)) {
                Progress.atLeast("events confirmed before the faults", perSecond, STALL, () -> (long) relay.gauge("outbox_relay_events_confirmed_total"));
                done = faults.inject(relay, random);
                assertThat(writer.failure()).as("the writer").isNull();
                written = writer.eventsByShape();
                outages = writer.outages();
            }
            Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", name);
            List<StreamedMessage> messages = streams.readAll(stream, committed.size(), Duration.ofSeconds(3), Duration.ofSeconds(240));
            DeliveryCheck check = DeliveryCheck.ofStream(messages, committed);
            FaultIT.report("stream: " + done + " at " + perSecond + "/s, seed " + seed + ", events by shape " + written
                    + (outages > 0 ? ", " + outages + " transactions cut off by the restart" : "") + ": " + check);
            assertThat(written.values()).as("every shape was written: " + written).allMatch(n -> n > 0);
            assertThat(check.lost()).as("nothing lost: " + check + " (seed " + seed + ")").isZero();
            assertThat(check.duplicates()).as("nothing twice in the stream: " + check + " (seed " + seed + ")").isZero();
            assertThat(check.orderViolations()).as("per-aggregate order (seed " + seed + ")").isEmpty();
            assertThat(relay.isAlive()).isTrue();
        }
    }

    private static boolean terminateWalsender(String slot) throws Exception {
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = ? AND active")) {
            ps.setString(1, slot);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() && rs.getBoolean(1);
            }
        }
    }
}
