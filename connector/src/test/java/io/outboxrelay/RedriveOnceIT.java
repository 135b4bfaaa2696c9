package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import io.outboxrelay.testing.DeliveryCheck;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.Progress;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ServerControl;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;
import io.outboxrelay.testing.TestStreams;

/**
 * {@code redrive} as processes of their own against 1,000 events the relay parked for real (no
 * binding for an exchange; a stream the relay's user may not make): two at once, and one SIGKILLed
 * part-way and run again. An independent consumer counts: into a stream every event once; over
 * AMQP every event, any repeat with its original id and at most one page (500) of them.
 */
class RedriveOnceIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();
    @RegisterExtension
    static final TestStreams streams = new TestStreams();

    private static final int PARKED = 1_000;
    private static final int PAGE = 500;
    /** How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. */
    private static final Duration STALL = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    @BeforeAll
    static void outbox() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
    }

    @Test
    void twoRedrivesAtOnceAndOneKilledPartWayPublishEachEventOnceOverAmqp() throws Exception {
        String exchange = broker.declareExchange("redrive-once", "topic");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "redrive-amqp");
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        park(config, "together", "unroutable");
        Set<String> together = committed("together");
        try (QueueRecorder recorder = broker.record(broker.declareQueue("redrive-once", exchange, "#"))) {
            try (RelayProcess first = RelayProcess.command(dir, config, "redrive", "--all", "--reason", "unroutable");
                    RelayProcess second = RelayProcess.command(dir, config, "redrive", "--all")) {
                assertThat(first.await(Duration.ofSeconds(120))).as(first.log()).isZero();
                assertThat(second.await(Duration.ofSeconds(120))).as(second.log()).isZero();
                assertThat(first.log() + second.log()).contains(PARKED + " republished", "0 republished");
            }
            recorder.awaitIds(together, Duration.ofSeconds(60));
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitQuiet(Duration.ofSeconds(2)), together);
            FaultIT.report("redrive: two at once over AMQP: " + check);
            assertThat(check.lost()).isZero();
            assertThat(check.duplicates()).as("one redrive at a time: none twice").isZero();
        }
        assertThat(parked("redrive-amqp")).isZero();

        // A new set parked for another exchange, then a redrive killed part-way and one run to the end.
        String other = broker.declareExchange("redrive-killed", "topic");
        config.put("debezium.sink.rabbitmq.exchange", other);
        park(config, "again", "unroutable");
        Set<String> again = committed("again");
        try (QueueRecorder recorder = broker.record(broker.declareQueue("redrive-killed", other, "#"))) {
            int seen = killPartWay(config, recorder::count, new Random().nextInt(PARKED - 100) + 50);
            try (RelayProcess rest = RelayProcess.command(dir, config, "redrive", "--all")) {
                assertThat(rest.await(Duration.ofSeconds(120))).as(rest.log()).isZero();
            }
            recorder.awaitIds(again, Duration.ofSeconds(60));
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitQuiet(Duration.ofSeconds(2)), again);
            FaultIT.report("redrive: SIGKILLed after " + seen + " deliveries and run again, over AMQP: " + check);
            assertThat(check.lost()).isZero();
            assertThat(check.duplicates()).as("at most the page in flight again").isLessThanOrEqualTo(PAGE);
            assertThat(recorder.deliveries()).allSatisfy(d -> assertThat(again).contains(d.getProperties().getMessageId()));
        }
        assertThat(parked("redrive-amqp")).isZero();
    }

    @Test
    void twoRedrivesAtOnceAndOneKilledPartWayStoreEachEventOnceInAStream() throws Exception {
        String user = "redrive-limited-" + Long.toString(System.nanoTime(), 36);
        String stream = streams.uniqueName("redrive-once", 0);
        Map<String, String> config = RelayFiles.intoStream(RelayFiles.minimalConfig(db, broker, "redrive-stream"), streams.server().host(),
                streams.server().port(), broker.server().user(), broker.server().password(), stream);
        Map<String, String> limited = new java.util.HashMap<>(config);
        // May write and read, not create: the stream cannot be made, so the relay parks every event.
        ServerControl.addBrokerUser(user, "limited", "^$", ".*", ".*");
        limited.put("debezium.sink.rabbitmqstream.username", user);
        limited.put("debezium.sink.rabbitmqstream.password", "limited");
        try {
            park(limited, "s-together", "cannot be created");
            park(limited, "s-killed", "cannot be created");
        }
        finally {
            ServerControl.deleteBrokerUser(user);
        }
        Set<String> first = union(committed("s-together"), committed("s-killed"));
        try (RelayProcess a = RelayProcess.command(dir, config, "redrive", "--id", String.join(",", committed("s-together")));
                RelayProcess b = RelayProcess.command(dir, config, "redrive", "--all")) {
            assertThat(a.await(Duration.ofSeconds(120))).as(a.log()).isZero();
            assertThat(b.await(Duration.ofSeconds(120))).as(b.log()).isZero();
        }
        DeliveryCheck together = DeliveryCheck.ofStream(streams.readAll(stream, first.size(), Duration.ofSeconds(2), Duration.ofSeconds(60)), first);
        FaultIT.report("redrive: two at once into a stream: " + together);
        assertThat(together.lost()).isZero();
        assertThat(together.duplicates()).isZero();
        assertThat(parked("redrive-stream")).isZero();

        // A new set parked, a redrive killed part-way, run again: still each once.
        ServerControl.addBrokerUser(user, "limited", "^$", ".*", ".*");
        String missing = streams.uniqueName("redrive-killed", 0);
        limited.put("debezium.sink.rabbitmqstream.stream", missing);
        try {
            park(limited, "s-again", "cannot be created");
        }
        finally {
            ServerControl.deleteBrokerUser(user);
        }
        config.put("debezium.sink.rabbitmqstream.stream", missing);
        Set<String> again = committed("s-again");
        try (TestStreams.Following following = followWhenMade(missing)) {
            int seen = killPartWay(config, following::count, new Random().nextInt(PARKED - 100) + 50);
            try (RelayProcess rest = RelayProcess.command(dir, config, "redrive", "--all")) {
                assertThat(rest.await(Duration.ofSeconds(120))).as(rest.log()).isZero();
            }
            DeliveryCheck check = DeliveryCheck.ofStream(streams.readAll(missing, again.size(), Duration.ofSeconds(2), Duration.ofSeconds(60)), again);
            FaultIT.report("redrive: SIGKILLed after " + seen + " messages were stored and run again, into a stream: " + check);
            assertThat(check.lost()).isZero();
            assertThat(check.duplicates()).as("each event once: the rows kept their publishing ids").isZero();
        }
        assertThat(parked("redrive-stream")).isZero();
    }

    /** Writes {@link #PARKED} events of aggregates {@code prefix-*} while the relay runs with {@code config}, until each is parked. */
    private void park(Map<String, String> config, String prefix, String reason) throws Exception {
        int before = parked(config.get("relay.name"));
        try (RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
                OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", prefix, 10, PARKED, 0)) {
            writer.awaitDone(STALL);
            Progress.atLeast("events parked by relay " + config.get("relay.name"), before + PARKED, STALL, () -> parked(config.get("relay.name")));
        }
        try (Connection c = db.connect(); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
                "SELECT count(*), count(*) FILTER (WHERE strpos(reason, '" + reason + "') > 0) FROM outbox_relay_dead_letter WHERE aggregate_id LIKE '"
                        + prefix + "-%' AND (strpos(reason, '" + reason + "') > 0 OR strpos(reason, 'held behind parked event ') = 1)")) {
            rs.next();
            // relay.dead-letter.order=keep-aggregate: the first of each aggregate for the reason, the rest held behind it.
            assertThat(rs.getInt(1)).as("parked for the reason, or behind one that was").isEqualTo(PARKED);
            assertThat(rs.getInt(2)).as("parked for the reason").isPositive();
        }
    }

    /** Starts a redrive, SIGKILLs it once {@code atLeast} messages arrived; returns how many had. */
    private int killPartWay(Map<String, String> config, java.util.function.IntSupplier arrived, int atLeast) throws Exception {
        try (RelayProcess redrive = RelayProcess.command(dir, config, "redrive", "--all")) {
            await().atMost(Duration.ofSeconds(120)).pollInterval(Duration.ofMillis(5)).until(() -> arrived.getAsInt() >= atLeast || !redrive.isAlive());
            redrive.kill();
            return arrived.getAsInt();
        }
    }

    /** A consumer of a stream the redrive will make: read from the first message once it exists. */
    private static TestStreams.Following followWhenMade(String stream) {
        streams.environment().streamCreator().stream(stream).create();
        return streams.follow(stream);
    }

    private static Set<String> committed(String prefix) throws Exception {
        return OutboxWriter.committedIds(db::connect, "outbox_event", prefix + "-");
    }

    private static Set<String> union(Set<String> a, Set<String> b) {
        Set<String> all = new java.util.HashSet<>(a);
        all.addAll(b);
        return all;
    }

    private static int parked(String relay) throws Exception {
        try (Connection c = db.connect(); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(
                "SELECT count(*) FROM outbox_relay_dead_letter WHERE relay_name = '" + relay + "' AND redriven_at IS NULL")) {
            rs.next();
            return rs.getInt(1);
        }
        catch (java.sql.SQLException e) {
            return 0; // the table appears with the relay's first start
        }
    }
}
