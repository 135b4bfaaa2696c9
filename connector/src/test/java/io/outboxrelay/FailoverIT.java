package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.client.Delivery;

import io.outboxrelay.cli.CliRun;
import io.outboxrelay.testing.DeliveryCheck;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ServerControl;
import io.outboxrelay.testing.StallingProxy;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/**
 * Hot standbys at the default settings: relays with the same {@code relay.name} as processes of
 * their own, 500 events a second, and the leader killed, frozen past its lease, cut off from
 * PostgreSQL, held back by RabbitMQ, or stopped, or PostgreSQL restarted under them; an independent
 * consumer checks that nothing is lost, that first deliveries keep per-aggregate order and how many
 * duplicates came. How long until the standby streamed, and the longest gap between two deliveries,
 * go to {@code target/fault-report.txt}. {@code OUTBOX_RELAY_FREEZE_SECONDS} (default 40) sets how
 * long the leader stays frozen: docs/high-availability.md's 120 s figure is this test with 120.
 */
class FailoverIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    private static final int PER_SECOND = 500;
    private static final int FREEZE_SECONDS = Integer.parseInt(System.getenv().getOrDefault("OUTBOX_RELAY_FREEZE_SECONDS", "40"));
    /** Everything published and not yet stored as an offset can come again: the window and what was confirmed since the last flush. */
    private static final int WINDOW = 1_000;
    /**
     * How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. Longer than
     * the default freeze and PostgreSQL's 5 s outage, which hold counts still on purpose.
     */
    private static final Duration STALL = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    @BeforeAll
    static void outbox() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
    }

    private record Group(String name, Map<String, String> config, String queue) {
    }

    private Group group(String name) throws Exception {
        String exchange = broker.declareExchange(name, "topic");
        String queue = broker.declareQueue(name, exchange, "#");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, name);
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("relay.restart.backoff.initial.ms", "200");
        config.put("relay.restart.backoff.max.ms", "2000");
        return new Group(name, config, queue);
    }

    /** Starts {@code count} relays, the first alone so that it leads; returns them, leader first, once the others stand by. */
    private List<RelayProcess> start(Group group, int count) throws Exception {
        List<RelayProcess> relays = new ArrayList<>();
        relays.add(RelayProcess.start(dir, group.config()).awaitReady(Duration.ofSeconds(60)));
        await().atMost(Duration.ofSeconds(60)).until(() -> streaming(relays.get(0)));
        for (int i = 1; i < count; i++) {
            RelayProcess standby = RelayProcess.start(dir, group.config()).awaitReady(Duration.ofSeconds(60));
            relays.add(standby);
            assertThat(standby.get("/q/health/leader").status()).as("a standby says so").isEqualTo(503);
            assertThat(standby.log()).contains("Standing by: relay '" + group.name() + "' is led by");
        }
        assertThat(relays.get(0).get("/q/health/leader").status()).isEqualTo(200);
        return relays;
    }

    private static boolean streaming(RelayProcess relay) throws InterruptedException {
        return relay.gauge("outbox_relay_streaming") == 1.0;
    }

    private static boolean leads(RelayProcess relay) throws InterruptedException {
        return relay.gauge("outbox_relay_leader") == 1.0;
    }

    /** Waits until one of {@code candidates} streams; returns it and how long that took from {@code since}. */
    private static Takeover awaitTakeover(List<RelayProcess> candidates, long since, Duration within) throws Exception {
        long deadline = System.nanoTime() + within.toNanos();
        while (System.nanoTime() < deadline) {
            for (RelayProcess r : candidates) {
                if (r.isAlive() && streaming(r)) {
                    return new Takeover(r, (System.nanoTime() - since) / 1_000_000);
                }
            }
            Thread.sleep(100);
        }
        throw new AssertionError("no standby streamed within " + within);
    }

    private record Takeover(RelayProcess leader, long millis) {
    }

    /** Delivers everything the writer committed and checks it; returns the check. */
    private DeliveryCheck verify(Group group, QueueRecorder recorder, OutboxWriter writer, int events, long faultAt, String fault, String takeovers)
            throws Exception {
        writer.awaitDone(STALL);
        Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", group.name());
        assertThat(committed).hasSize(events);
        recorder.awaitIds(committed, Duration.ofSeconds(120));
        List<Delivery> deliveries = recorder.awaitQuiet(Duration.ofSeconds(2));
        long gap = FaultIT.longestGapAfter(recorder.arrivalNanos(), faultAt);
        DeliveryCheck check = DeliveryCheck.of(deliveries, committed);
        FaultIT.report(fault + ": " + check + ", " + takeovers + ", longest delivery gap " + gap + " ms");
        assertThat(check.lost()).as("nothing lost: " + check).isZero();
        assertThat(check.orderViolations()).as("per-aggregate order of first deliveries").isEmpty();
        return check;
    }

    @Test
    void theLeaderKilledAStandbyTakesOver() throws Exception {
        Group group = group("ha-kill");
        List<RelayProcess> relays = start(group, 2);
        CliRun status = CliRun.of("status", "--config", RelayFiles.write(dir, group.config()).toString());
        assertThat(status.out()).as(status.err()).containsPattern("leader         \\S+ pid " + relays.get(0).pid() + ", epoch 1, since ")
                .containsPattern("standbys       \\S+ pid " + relays.get(1).pid() + " \\(seen ");
        try (QueueRecorder recorder = broker.record(group.queue());
                OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", group.name(), 20, 6_000, PER_SECOND)) {
            recorder.awaitAtLeast(600, Duration.ofSeconds(60));
            long faultAt = System.nanoTime();
            relays.get(0).kill();
            Takeover takeover = awaitTakeover(List.of(relays.get(1)), faultAt, Duration.ofSeconds(60));
            assertThat(takeover.leader().log()).contains("Became the leader of relay 'ha-kill' (epoch 2): took the lease over from");
            DeliveryCheck check = verify(group, recorder, writer, 6_000, faultAt, "leader killed (SIGKILL), standby took over",
                    "streaming again " + takeover.millis() + " ms after the kill");
            assertThat(check.duplicates()).as("at most the window and what was confirmed since the last flush").isLessThanOrEqualTo(WINDOW + 500);
        }
        finally {
            closeAll(relays);
        }
    }

    /**
     * Frozen (SIGSTOP) for longer than its lease, the leader's connections all stay open and its
     * socket buffers fill: a walsender terminated now would hang writing its farewell until the
     * leader wakes. The standby must stream while the leader is still frozen, and the walsender
     * must have ended by itself ({@code relay.leader.walsender.timeout.ms}), not been terminated.
     * Woken, the old leader must publish nothing more and stand by.
     */
    @Test
    @Tag("storm")
    void theLeaderFrozenLongerThanItsLeaseIsReplacedWhileStillFrozen() throws Exception {
        Group group = group("ha-freeze");
        List<RelayProcess> relays = start(group, 2);
        RelayProcess old = relays.get(0);
        int events = (FREEZE_SECONDS + 25) * PER_SECOND;
        try (QueueRecorder recorder = broker.record(group.queue());
                // 2 KB rows: the frozen leader's socket buffers fill within seconds, as they do for any relay frozen long enough.
                OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", group.name(), 20, events, PER_SECOND, 2_048)) {
            recorder.awaitAtLeast(2_000, Duration.ofSeconds(60));
            double publishedBefore = published(old, group);
            long faultAt = System.nanoTime();
            old.freeze();
            Takeover takeover;
            try {
                takeover = awaitTakeover(List.of(relays.get(1)), faultAt, Duration.ofSeconds(FREEZE_SECONDS));
                // Streaming by the gauge is not enough: events must arrive again while the old leader is still frozen.
                int seen = recorder.count();
                recorder.awaitAtLeast(seen + PER_SECOND, Duration.ofMillis(Math.max(1, FREEZE_SECONDS * 1_000L - (System.nanoTime() - faultAt) / 1_000_000)));
                assertThat(Duration.ofNanos(System.nanoTime() - faultAt)).as("a second's events arrived while the old leader was still frozen")
                        .isLessThan(Duration.ofSeconds(FREEZE_SECONDS));
                Thread.sleep(Math.max(0, FREEZE_SECONDS * 1_000L - (System.nanoTime() - faultAt) / 1_000_000));
            }
            finally {
                old.thaw();
            }
            await().atMost(Duration.ofSeconds(60)).until(() -> old.log().contains("Stepping down as the leader of relay 'ha-freeze' (epoch 1)"));
            await().atMost(Duration.ofSeconds(60)).until(() -> !leads(old) && old.get("/q/health/ready").status() == 200);
            assertThat(published(old, group) - publishedBefore).as("what the old leader published after its lease ran out (only what was on its way "
                    + "when it was frozen)").isLessThanOrEqualTo(50);
            assertThat(takeover.leader().log()).as("the frozen leader's walsender ended by itself").doesNotContain("terminating it");
            DeliveryCheck check = verify(group, recorder, writer, events, faultAt, "leader frozen (SIGSTOP) for " + FREEZE_SECONDS + " s at "
                    + PER_SECOND + "/s, then woken (SIGCONT)", "streaming again " + takeover.millis() + " ms after the freeze");
            assertThat(check.duplicates()).isLessThanOrEqualTo(WINDOW + PER_SECOND);
            assertOneStreams(relays, group);
            assertThat(old.log()).as("a clean step-down").doesNotContain("Exception in thread");
        }
        finally {
            closeAll(relays);
        }
    }

    /**
     * Every packet of the leader's to and from PostgreSQL lost (a proxy that reads and throws away
     * both ways, closing nothing): it cannot renew, pauses, and steps down when its lease runs out
     * by its own clock; its walsender hears nothing and ends by itself, and the standby takes over
     * early, at the default settings.
     */
    @Test
    @Tag("storm")
    void theLeaderWhosePacketsAreLostIsReplaced() throws Exception {
        Group group = group("ha-drop");
        List<RelayProcess> relays = new ArrayList<>();
        try (StallingProxy proxy = StallingProxy.start(db.server().host(), db.server().port())) {
            Map<String, String> viaProxy = new java.util.LinkedHashMap<>(group.config());
            viaProxy.put("debezium.source.database.hostname", proxy.host());
            viaProxy.put("debezium.source.database.port", Integer.toString(proxy.port()));
            // The offset store's URL comes from the source's, so it goes through the proxy as well; the lease too.
            relays.add(RelayProcess.start(dir, viaProxy).awaitReady(Duration.ofSeconds(60)));
            await().atMost(Duration.ofSeconds(60)).until(() -> streaming(relays.get(0)));
            relays.add(RelayProcess.start(dir, group.config()).awaitReady(Duration.ofSeconds(60)));
            try (QueueRecorder recorder = broker.record(group.queue());
                    OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", group.name(), 20, 20_000, PER_SECOND)) {
                recorder.awaitAtLeast(2_000, Duration.ofSeconds(60));
                long faultAt = System.nanoTime();
                proxy.drop();
                Takeover takeover = awaitTakeover(List.of(relays.get(1)), faultAt, Duration.ofSeconds(60));
                await().atMost(Duration.ofSeconds(60)).until(() -> relays.get(0).log().contains("Stepping down as the leader of relay 'ha-drop'"));
                assertThat(relays.get(0).log()).contains("publishing pauses until a renewal succeeds");
                DeliveryCheck check = verify(group, recorder, writer, 20_000, faultAt, "leader's packets to and from PostgreSQL all lost (no reset), "
                        + PER_SECOND + "/s", "standby streaming " + takeover.millis() + " ms after the loss began");
                assertThat(check.duplicates()).isLessThanOrEqualTo(WINDOW + PER_SECOND);
                assertOneStreams(relays, group);
            }
        }
        finally {
            closeAll(relays);
        }
    }

    /**
     * PostgreSQL restarted under a leader and its standby: every connection of both goes, for longer
     * than three renewals. Whichever takes the lease when it is back, nothing is lost, first
     * deliveries keep their order, and afterwards one relay leads with one walsender.
     */
    @Test
    @Tag("storm")
    void postgresRestartedWhileAStandbyWaits() throws Exception {
        Group group = group("ha-pg-restart");
        List<RelayProcess> relays = start(group, 2);
        try (QueueRecorder recorder = broker.record(group.queue());
                OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", group.name(), 20, 15_000, PER_SECOND)) {
            recorder.awaitAtLeast(2_000, Duration.ofSeconds(60));
            long faultAt = System.nanoTime();
            ServerControl.stopPostgres();
            Thread.sleep(5_000);
            ServerControl.startPostgres();
            int seen = recorder.count();
            recorder.awaitAtLeast(seen + 500, Duration.ofSeconds(90));
            Takeover leader = awaitTakeover(relays, faultAt, Duration.ofSeconds(60));
            DeliveryCheck check = verify(group, recorder, writer, 15_000, faultAt, "PostgreSQL restarted (down 5 s) under a leader and a standby, "
                    + PER_SECOND + "/s", "streaming again " + leader.millis() + " ms after the stop, led by the "
                    + (leader.leader() == relays.get(0) ? "same relay" : "standby"));
            assertThat(check.duplicates()).isLessThanOrEqualTo(2 * (WINDOW + PER_SECOND));
            assertOneStreams(relays, group);
        }
        finally {
            closeAll(relays);
        }
    }

    /**
     * RabbitMQ blocks the leader's publishing (a memory alarm) for three times the walsender
     * time-out: the engine stops reading the replication stream, but Debezium's keep-alive thread
     * goes on answering, so PostgreSQL keeps the walsender and nobody takes over: the leader is
     * held back, not cut off and reconnected in a loop.
     */
    @Test
    @Tag("storm")
    void aLeaderHeldBackByRabbitMqIsNotCutOff() throws Exception {
        Group group = group("ha-blocked");
        List<RelayProcess> relays = start(group, 2);
        try (QueueRecorder recorder = broker.record(group.queue());
                OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", group.name(), 20, 25_000, PER_SECOND)) {
            recorder.awaitAtLeast(2_000, Duration.ofSeconds(60));
            long walsender = walsender(group);
            long faultAt = System.nanoTime();
            String watermark = ServerControl.raiseMemoryAlarm();
            try {
                Thread.sleep(30_000);
                assertThat(walsender(group)).as("the same walsender reads the slot").isEqualTo(walsender);
                assertThat(leads(relays.get(0))).as("still the leader").isTrue();
                assertThat(leads(relays.get(1))).as("still a standby").isFalse();
            }
            finally {
                ServerControl.clearMemoryAlarm(watermark);
            }
            DeliveryCheck check = verify(group, recorder, writer, 25_000, faultAt, "RabbitMQ blocked the leader for 30 s (memory alarm), "
                    + PER_SECOND + "/s", "the same walsender throughout, no takeover");
            assertThat(check.duplicates()).as("nothing was cut off, so nothing came twice").isZero();
            assertThat(relays.get(0).log()).doesNotContain("restarting in").doesNotContain("Stepping down");
        }
        finally {
            closeAll(relays);
        }
    }

    /** The pid of the walsender reading the group's slot; 0 when none does. */
    private static long walsender(Group group) throws Exception {
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement("SELECT coalesce(active_pid, 0) FROM pg_replication_slots WHERE slot_name = ?")) {
            ps.setString(1, group.name().replace('-', '_'));
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getLong(1) : 0;
            }
        }
    }

    @Test
    void threeRelaysSurviveTwoFailoversInARow() throws Exception {
        Group group = group("ha-three");
        List<RelayProcess> relays = start(group, 3);
        try (QueueRecorder recorder = broker.record(group.queue());
                OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", group.name(), 20, 10_000, PER_SECOND)) {
            recorder.awaitAtLeast(600, Duration.ofSeconds(60));
            long faultAt = System.nanoTime();
            relays.get(0).kill();
            Takeover first = awaitTakeover(relays.subList(1, 3), faultAt, Duration.ofSeconds(60));
            int seen = recorder.count();
            recorder.awaitAtLeast(seen + 400, Duration.ofSeconds(60));
            long secondAt = System.nanoTime();
            first.leader().kill();
            List<RelayProcess> rest = new ArrayList<>(relays.subList(1, 3));
            rest.remove(first.leader());
            Takeover second = awaitTakeover(rest, secondAt, Duration.ofSeconds(60));
            assertThat(second.leader().log()).contains("(epoch 3)");
            DeliveryCheck check = verify(group, recorder, writer, 10_000, faultAt, "three relays, leader killed twice",
                    "streaming again " + first.millis() + " ms and " + second.millis() + " ms after the kills");
            assertThat(check.duplicates()).isLessThanOrEqualTo(2 * (WINDOW + 500));
        }
        finally {
            closeAll(relays);
        }
    }

    /** SIGTERM drains, stores the offset, then gives the lease up: the standby starts exactly there. */
    @Test
    void aGracefulStopHandsOverWithoutDuplicates() throws Exception {
        Group group = group("ha-handover");
        List<RelayProcess> relays = start(group, 2);
        try (QueueRecorder recorder = broker.record(group.queue());
                OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", group.name(), 20, 6_000, PER_SECOND)) {
            recorder.awaitAtLeast(600, Duration.ofSeconds(60));
            long faultAt = System.nanoTime();
            assertThat(relays.get(0).stop()).as("exit after SIGTERM (128+15)").isEqualTo(143);
            Takeover takeover = awaitTakeover(List.of(relays.get(1)), faultAt, Duration.ofSeconds(60));
            assertThat(relays.get(0).log()).contains("Released the lease of relay 'ha-handover' (epoch 1)");
            DeliveryCheck check = verify(group, recorder, writer, 6_000, faultAt, "leader stopped (SIGTERM), lease handed over",
                    "standby streaming " + takeover.millis() + " ms after the signal");
            assertThat(check.duplicates()).as("a handover republishes nothing").isZero();
        }
        finally {
            closeAll(relays);
        }
    }

    private static double published(RelayProcess relay, Group group) throws InterruptedException {
        double n = relay.metric("outbox_relay_events_published_total{exchange=\"" + group.config().get("debezium.sink.rabbitmq.exchange")
                + "\",relay=\"" + group.name() + "\"}");
        return Double.isNaN(n) ? 0 : n;
    }

    /** Afterwards exactly one process leads and streams, and the slot has one reader. */
    private static void assertOneStreams(List<RelayProcess> relays, Group group) throws Exception {
        await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
            int leaders = 0;
            int streamingRelays = 0;
            for (RelayProcess r : relays) {
                if (r.isAlive() && leads(r)) {
                    leaders++;
                }
                if (r.isAlive() && streaming(r)) {
                    streamingRelays++;
                }
            }
            assertThat(leaders).as("leaders").isEqualTo(1);
            assertThat(streamingRelays).as("relays streaming").isEqualTo(1);
        });
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots s "
                + "ON s.active_pid = r.pid WHERE s.slot_name = ?")) {
            ps.setString(1, group.name().replace('-', '_'));
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                assertThat(rs.getInt(1)).as("walsenders on the slot").isEqualTo(1);
            }
        }
    }

    private static void closeAll(List<RelayProcess> relays) throws InterruptedException {
        for (RelayProcess r : relays) {
            if (r.isAlive()) {
                r.thaw();
            }
            r.close();
        }
    }
}
