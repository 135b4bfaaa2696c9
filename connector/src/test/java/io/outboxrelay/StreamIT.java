package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CountDownLatch;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.stream.Environment;
import com.rabbitmq.stream.Producer;

import io.outboxrelay.cli.CliRun;
import io.outboxrelay.testing.DeliveryCheck;
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
 * The RabbitMQ Streams sink against a real broker, with a Debezium Server {@code rabbitmqstream}
 * configuration as it is: each fault (SIGKILL of the relay, a broker restart, cut connections) is
 * followed by reading the whole stream back with a consumer of its own, which must find every
 * committed event exactly once, in per-aggregate order, with the outbox id as message id.
 */
class StreamIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();
    @RegisterExtension
    static final TestStreams streams = new TestStreams();

    private static final int EVENTS = 2_000;
    private static final int PER_SECOND = 500;
    /**
     * How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. Long here:
     * a restarted broker and cut connections hold counts still on purpose.
     */
    private static final Duration STALL = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    @BeforeAll
    static void outbox() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
    }

    private interface Fault {
        RelayProcess inject(RelayProcess relay, Map<String, String> config) throws Exception;
    }

    /** Debezium Server's keys and Debezium's own router, nothing of this project's. */
    private static Map<String, String> debeziumServerConfig(String relayName, String stream, String host, int port) {
        Map<String, String> config = RelayFiles.intoStream(RelayFiles.minimalConfig(db, broker, relayName), host, port, broker.server().user(),
                broker.server().password(), stream);
        config.put("debezium.transforms", "outbox");
        config.put("debezium.transforms.outbox.type", "io.debezium.transforms.outbox.EventRouter");
        config.put("relay.restart.backoff.initial.ms", "200");
        config.put("relay.restart.backoff.max.ms", "2000");
        return config;
    }

    private static Map<String, String> config(String relayName, String stream) {
        return debeziumServerConfig(relayName, stream, streams.server().host(), streams.server().port());
    }

    @Test
    void aDebeziumServerConfigurationDeliversEveryEventOnceWithItsProperties() throws Exception {
        String stream = streams.uniqueName("ds-config", 0);
        Map<String, String> config = config("stream-ds", stream);
        try (RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            write("stream-ds", 300, 0);
            Set<String> committed = committedIds("stream-ds");
            List<StreamedMessage> messages = streams.readAll(stream, committed.size(), Duration.ofSeconds(2), Duration.ofSeconds(60));
            DeliveryCheck check = DeliveryCheck.ofStream(messages, committed);
            assertThat(check.lost()).isZero();
            assertThat(check.duplicates()).isZero();
            assertThat(check.orderViolations()).isEmpty();
            Map<String, String> aggregates = aggregatesById("stream-ds");
            for (StreamedMessage m : messages) {
                assertThat(m.groupId()).as("the group id is the aggregate id").isEqualTo(aggregates.get(m.messageId()));
                assertThat(m.subject()).as("the event type travels as subject").isEqualTo("T");
                assertThat(m.applicationProperties()).containsEntry("type", "T").containsEntry("app-id", "stream-ds");
                assertThat(m.applicationProperties().keySet()).as("Debezium's engine headers are not the consumer's business")
                        .noneMatch(k -> k.startsWith("__debezium"));
            }
            assertThat(relay.log()).doesNotContain("Exception");
            assertThat(relay.gauge("outbox_relay_events_published_total")).isGreaterThanOrEqualTo(committed.size());
        }
    }

    /**
     * A first start (no stored offset) on a stream whose broker already holds ids of the producer
     * above this host's clock in microseconds, as a predecessor on a host whose clock ran ahead
     * leaves: numbered from the clock, every new event would be dropped as a duplicate. The relay
     * numbers above the broker's last id instead.
     */
    @Test
    void aFirstStartNumbersAboveWhatTheBrokerHoldsOfTheProducer() throws Exception {
        String stream = streams.uniqueName("ahead", 0);
        long ahead = System.currentTimeMillis() * 1_000 * 4;
        Environment env = streams.environment();
        env.streamCreator().stream(stream).create();
        CountDownLatch confirmed = new CountDownLatch(3);
        try (Producer predecessor = env.producerBuilder().name("stream-ahead").stream(stream).build()) {
            for (int i = 1; i <= 3; i++) {
                predecessor.send(predecessor.messageBuilder().publishingId(ahead + i).properties().messageId("predecessor-" + i).messageBuilder()
                        .addData(new byte[] { 1 }).build(), status -> confirmed.countDown());
            }
            Progress.atLeast("confirms of the predecessor's messages", 3, STALL, () -> 3 - confirmed.getCount());
        }
        try (RelayProcess relay = RelayProcess.start(dir, config("stream-ahead", stream)).awaitReady(Duration.ofSeconds(60))) {
            write("stream-ahead", 300, 0);
            Set<String> committed = committedIds("stream-ahead");
            List<StreamedMessage> messages = streams.readAll(stream, committed.size() + 3, Duration.ofSeconds(2), Duration.ofSeconds(60)).stream()
                    .filter(m -> committed.contains(m.messageId())).toList();
            DeliveryCheck check = DeliveryCheck.ofStream(messages, committed);
            FaultIT.report("first start on a stream holding ids of the producer up to " + (ahead + 3) + " (a predecessor's clock ahead): " + check);
            assertThat(check.lost()).as("nothing taken for a duplicate: " + check).isZero();
            assertThat(check.duplicates()).isZero();
            assertThat(relay.log()).contains("numbering stream messages of producer 'stream-ahead' from " + (ahead + 4) + ", the broker's last id of it");
        }
    }

    @Test
    void aSecondRelayUnderTheFirstOnesProducerNameIsRefused() throws Exception {
        String stream = streams.uniqueName("claimed", 0);
        Map<String, String> first = config("stream-claim-a", stream);
        first.put("debezium.sink.rabbitmqstream.producer.name", "orders-producer");
        Map<String, String> second = config("stream-claim-b", stream);
        second.put("debezium.sink.rabbitmqstream.producer.name", "orders-producer");
        try (RelayProcess owner = RelayProcess.start(dir, first).awaitReady(Duration.ofSeconds(60));
                RelayProcess other = RelayProcess.start(dir, second)) {
            await().atMost(Duration.ofSeconds(60)).until(() -> !other.isAlive());
            assertThat(other.stop()).isEqualTo(2);
            assertThat(other.log()).contains("stream producer 'orders-producer' on stream '" + stream + "' is relay 'stream-claim-a''s, and this relay is "
                    + "'stream-claim-b'", "debezium.sink.rabbitmqstream.producer.name", "DELETE FROM outbox_relay_stream_producers");
            assertThat(owner.isAlive()).isTrue();
            CliRun check = CliRun.of("check", "--config", RelayFiles.write(dir, second).toString());
            assertThat(check.out()).contains("[FAIL] stream producer 'orders-producer' on stream '" + stream + "' is relay 'stream-claim-a''s");
            assertThat(check.exit()).isNotZero();
            // Into another stream the name is free; a standby or a restart of the owner keeps its claim.
            Map<String, String> elsewhere = config("stream-claim-b", streams.uniqueName("claimed-other", 0));
            elsewhere.put("debezium.sink.rabbitmqstream.producer.name", "orders-producer");
            try (RelayProcess free = RelayProcess.start(dir, elsewhere).awaitReady(Duration.ofSeconds(60))) {
                assertThat(free.isAlive()).isTrue();
            }
        }
        try (RelayProcess again = RelayProcess.start(dir, first).awaitReady(Duration.ofSeconds(60))) {
            assertThat(again.isAlive()).isTrue();
        }
    }

    @Test
    void relayKilledMidStreamLeavesNoDuplicateInTheStream() throws Exception {
        DeliveryCheck check = streamThrough("stream-kill", "relay killed (SIGKILL) mid-stream and started again", (relay, config) -> {
            relay.kill();
            return RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
        });
        assertThat(check.duplicates()).as("the broker dropped what was published again").isZero();
    }

    /** The standby numbers the events after the stored offset exactly as the leader did: what the leader published is dropped. */
    @Test
    void aStandbyTakingOverFromAKilledLeaderLeavesNoDuplicateInTheStream() throws Exception {
        RelayProcess[] standby = new RelayProcess[1];
        try {
            DeliveryCheck check = streamThrough("stream-failover", "leader killed (SIGKILL), its hot standby takes over", (relay, config) -> {
                standby[0] = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
                assertThat(standby[0].get("/q/health/leader").status()).as("it stands by").isEqualTo(503);
                relay.kill();
                await().atMost(Duration.ofSeconds(60)).until(() -> standby[0].get("/q/health/leader").status() == 200);
                return standby[0];
            });
            assertThat(check.duplicates()).as("the standby's publishing ids are the leader's").isZero();
        }
        finally {
            if (standby[0] != null) {
                standby[0].close();
            }
        }
    }

    @Test
    void brokerRestartLeavesNoDuplicateInTheStream() throws Exception {
        DeliveryCheck check = streamThrough("stream-restart", "RabbitMQ restarted (stop_app, 3 s, start_app) under a stream", (relay, config) -> {
            ServerControl.restartRabbitMq(Duration.ofSeconds(3));
            return relay;
        });
        assertThat(check.duplicates()).isZero();
    }

    @Test
    void cutConnectionsLeaveNoDuplicateInTheStream() throws Exception {
        try (StallingProxy proxy = StallingProxy.start(streams.server().host(), streams.server().port())) {
            DeliveryCheck check = streamThrough("stream-cut", "every stream connection cut (TCP reset through a proxy)", proxy, (relay, config) -> {
                assertThat(proxy.cut()).as("connections were cut").isPositive();
                return relay;
            });
            assertThat(check.duplicates()).isZero();
        }
    }

    /** Tagged: the machine's RabbitMQ 3.10 has no super streams; deploy/local/test.sh runs it against trixie's RabbitMQ 4.0. */
    @Test
    @Tag("rabbitmq4")
    void superStreamKeepsEachAggregateInOnePartitionExactlyOnce() throws Exception {
        assertThat(streams.superStreamsSupported()).as("super streams need RabbitMQ 3.11+: run this against RabbitMQ 4.0 (deploy/local/trixie.sh)").isTrue();
        String superStream = streams.uniqueName("super", 3);
        Map<String, String> config = config("stream-super", superStream);
        config.put("debezium.sink.rabbitmqstream.superStream.enable", "true");
        config.put("debezium.sink.rabbitmqstream.superStream.partitions", "3");
        RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
        try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", "stream-super", 20, EVENTS, PER_SECOND)) {
            RelayProcess first = relay;
            Progress.atLeast("events confirmed before the kill", EVENTS / 4, STALL, () -> (long) first.gauge("outbox_relay_events_confirmed_total"));
            relay.kill();
            relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
            writer.awaitDone(STALL);
            Set<String> committed = committedIds("stream-super");
            List<String> partitions = List.of(superStream + "-0", superStream + "-1", superStream + "-2");
            Map<String, List<StreamedMessage>> byPartition = streams.readPartitions(partitions, committed.size(), Duration.ofSeconds(2), Duration.ofSeconds(120));
            List<StreamedMessage> all = new ArrayList<>();
            Map<String, String> partitionOf = new HashMap<>();
            for (String partition : partitions) {
                for (StreamedMessage m : byPartition.get(partition)) {
                    all.add(m);
                    String before = partitionOf.put(m.groupId(), partition);
                    assertThat(before == null || before.equals(partition)).as("aggregate " + m.groupId() + " stays in one partition").isTrue();
                }
            }
            DeliveryCheck check = DeliveryCheck.ofStream(all, committed);
            FaultIT.report("super stream of 3 partitions, relay killed mid-stream: " + check + ", messages per partition "
                    + partitions.stream().map(p -> Integer.toString(byPartition.get(p).size())).toList());
            assertThat(byPartition.values()).allSatisfy(list -> assertThat(list).isNotEmpty());
            assertThat(check.lost()).isZero();
            assertThat(check.duplicates()).isZero();
            assertThat(check.orderViolations()).isEmpty();
        }
        finally {
            relay.close();
        }
    }

    @Test
    void whatTheBrokerCannotTakeIsDeadLetteredWithTheReason() throws Exception {
        String user = "stream-limited-" + Long.toString(System.nanoTime(), 36);
        String stream = streams.uniqueName("forbidden", 0);
        // May write to and read from anything, configure (create) nothing: the stream cannot be made.
        ServerControl.addBrokerUser(user, "limited", "^$", ".*", ".*");
        Map<String, String> config = config("stream-refused", stream);
        config.put("debezium.sink.rabbitmqstream.username", user);
        config.put("debezium.sink.rabbitmqstream.password", "limited");
        try (RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            write("stream-refused", 5, 0);
            Progress.exactly("events dead-lettered by relay stream-refused", 5, STALL, () -> deadLetters("stream-refused").size());
            assertThat(deadLetters("stream-refused")).allSatisfy(reason -> assertThat(reason)
                    .contains("stream '" + stream + "' does not exist and cannot be created", "configure permission"));
            assertThat(relay.log()).contains("does not exist and cannot be created").doesNotContain("Exception");
        }
        finally {
            ServerControl.deleteBrokerUser(user);
        }
        // Fixed (a user that may make the stream), the parked events are re-driven into it, once each, with their ids.
        CliRun redrive = CliRun.of("redrive", "--config", RelayFiles.write(dir, config("stream-refused", stream)).toString(), "--all");
        assertThat(redrive.out()).contains("5 republished, 0 still unroutable, 0 not re-drivable");
        Set<String> refused = committedIds("stream-refused");
        DeliveryCheck redriven = DeliveryCheck.ofStream(streams.readAll(stream, 5, Duration.ofSeconds(1), Duration.ofSeconds(30)), refused);
        assertThat(redriven.lost()).isZero();
        assertThat(redriven.duplicates()).isZero();
        assertThat(CliRun.of("redrive", "--config", RelayFiles.write(dir, config("stream-refused", stream)).toString(), "--all").out())
                .as("re-driven once: nothing left to re-drive").contains("0 republished");

        String large = streams.uniqueName("large", 0);
        Map<String, String> big = config("stream-large", large);
        try (RelayProcess relay = RelayProcess.start(dir, big).awaitReady(Duration.ofSeconds(60))) {
            try (Connection c = db.connect(); Statement s = c.createStatement()) {
                // 2 MB of payload: above the 1 MiB frame RabbitMQ's stream listener takes by default.
                s.execute("INSERT INTO outbox_event (id, aggregatetype, aggregateid, type, payload) VALUES (gen_random_uuid(), 'Order', "
                        + "'huge-1', 'Big', jsonb_build_object('agg', 'huge-1', 'seq', 1, 'pad', repeat('x', 2000000)))");
            }
            write("stream-large", 20, 0);
            Set<String> small = committedIds("stream-large");
            List<StreamedMessage> messages = streams.readAll(large, 20, Duration.ofSeconds(2), Duration.ofSeconds(60));
            assertThat(DeliveryCheck.ofStream(messages, small).lost()).as("the events behind the large one arrive").isZero();
            await().atMost(Duration.ofSeconds(60)).until(() -> deadLetters("stream-large").size() == 1);
            assertThat(deadLetters("stream-large").get(0)).contains("too large", "frame");
        }
    }

    @Test
    void aBrokerWithoutTheStreamListenerIsNamedAtStart() throws Exception {
        Map<String, String> config = debeziumServerConfig("stream-noplugin", streams.uniqueName("none", 0), "127.0.0.1", 1);
        try (RelayProcess relay = RelayProcess.start(dir, config)) {
            await().atMost(Duration.ofSeconds(60)).until(() -> relay.log().contains("rabbitmq_stream"));
            assertThat(relay.log()).contains("cannot connect to RabbitMQ Streams at 127.0.0.1:1", "rabbitmq-plugins enable rabbitmq_stream");
        }
    }

    @Test
    void checkCreatesOrFindsTheStreamAndTailReadsIt() throws Exception {
        String stream = streams.uniqueName("checked", 0);
        Map<String, String> config = config("stream-checked", stream);
        Path file = RelayFiles.write(dir, config);
        CliRun first = CliRun.of("check", "--config", file.toString());
        assertThat(first.out()).contains("[ OK ] RabbitMQ Streams reachable at " + streams.server().host() + ":" + streams.server().port(),
                "stream '" + stream + "' did not exist and was created", "stream connection is not TLS (loopback)").doesNotContain("[FAIL]");
        assertThat(CliRun.of("check", "--config", file.toString()).out()).contains("stream '" + stream + "' exists; producer 'stream-checked'");

        try (RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            write("stream-checked", 10, 0);
            streams.readAll(stream, 10, Duration.ofSeconds(1), Duration.ofSeconds(60));
        }
        CliRun tail = CliRun.of("tail", "--config", file.toString(), "--from", "first", "--count", "10", "--timeout", "30");
        assertThat(tail.exit()).isZero();
        assertThat(tail.out()).contains("reading stream '" + stream + "' from first");
        assertThat(tail.out().lines().filter(l -> l.contains("type=T key=stream-checked-")).count()).isEqualTo(10);

        Map<String, String> nowhere = debeziumServerConfig("stream-checked", stream, "127.0.0.1", 1);
        CliRun refused = CliRun.of("check", "--config", RelayFiles.write(dir, nowhere).toString());
        assertThat(refused.out()).contains("[FAIL] cannot connect to RabbitMQ Streams at 127.0.0.1:1", "rabbitmq-plugins enable rabbitmq_stream");
        assertThat(refused.exit()).isNotZero();
    }

    private DeliveryCheck streamThrough(String relayName, String fault, Fault action) throws Exception {
        return streamThrough(relayName, fault, null, action);
    }

    private DeliveryCheck streamThrough(String relayName, String fault, StallingProxy proxy, Fault action) throws Exception {
        String stream = streams.uniqueName(relayName, 0);
        Map<String, String> config = proxy == null ? config(relayName, stream) : debeziumServerConfig(relayName, stream, proxy.host(), proxy.port());
        config.put("debezium.sink.rabbitmqstream.producer.confirmTimeout", "5");
        RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
        try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", relayName, 20, EVENTS, PER_SECOND)) {
            RelayProcess running = relay;
            Progress.atLeast("events confirmed before the fault", EVENTS / 4, STALL, () -> (long) running.gauge("outbox_relay_events_confirmed_total"));
            relay = action.inject(relay, config);
            writer.awaitDone(STALL);
            Set<String> committed = committedIds(relayName);
            assertThat(committed).hasSize(EVENTS);
            List<StreamedMessage> messages = streams.readAll(stream, committed.size(), Duration.ofSeconds(3), Duration.ofSeconds(180));
            DeliveryCheck check = DeliveryCheck.ofStream(messages, committed);
            FaultIT.report("stream: " + fault + ": " + check);
            assertThat(check.lost()).as("nothing lost: " + check).isZero();
            assertThat(check.orderViolations()).isEmpty();
            assertThat(messages).allSatisfy(m -> assertThat(committed).contains(m.messageId()));
            assertThat(relay.isAlive()).isTrue();
            return check;
        }
        finally {
            relay.close();
        }
    }

    private static void write(String prefix, int events, int perSecond) throws Exception {
        try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", prefix, 5, events, perSecond)) {
            writer.awaitDone(STALL);
        }
    }

    private static Set<String> committedIds(String prefix) throws Exception {
        return OutboxWriter.committedIds(db::connect, "outbox_event", prefix + "-");
    }

    private static Map<String, String> aggregatesById(String prefix) throws Exception {
        Map<String, String> byId = new HashMap<>();
        try (Connection c = db.connect(); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT id::text, aggregateid FROM outbox_event WHERE aggregateid LIKE '" + prefix + "-%'")) {
            while (rs.next()) {
                byId.put(rs.getString(1), rs.getString(2));
            }
        }
        return byId;
    }

    private static List<String> deadLetters(String relayName) throws Exception {
        List<String> reasons = new ArrayList<>();
        try (Connection c = db.connect(); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT reason FROM outbox_relay_dead_letter WHERE relay_name = '" + relayName + "' ORDER BY id")) {
            while (rs.next()) {
                reasons.add(rs.getString(1));
            }
        }
        catch (java.sql.SQLException e) {
            // The table is made by the first relay that parks; until then there is nothing.
        }
        return reasons;
    }
}
