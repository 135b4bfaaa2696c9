package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.io.OutputStream;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.DeliveryCheck;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ServerControl;
import io.outboxrelay.testing.StallingProxy;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/**
 * Connections that hang instead of failing: a broker connection and an offset-store connection
 * frozen half-open by a {@link StallingProxy}, HTTP clients that never finish their request, and a
 * broker that blocks publishing while the relay is asked to stop. Each must end in a time-out and a
 * retry, never in a stream that stands still for good.
 */
class StallIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    private static final int EVENTS = 2_000;
    private static final int PER_SECOND = 400;
    /**
     * How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. Long here:
     * connections frozen on purpose hold counts still until a time-out and a retry.
     */
    private static final Duration STALL = Duration.ofSeconds(60);

    @TempDir
    Path dir;

    @BeforeAll
    static void outbox() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
    }

    private Map<String, String> config(String name, String exchange) {
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, name);
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("relay.restart.backoff.initial.ms", "200");
        config.put("relay.restart.backoff.max.ms", "2000");
        return config;
    }

    @Test
    void aFrozenBrokerConnectionTimesOutAndTheRelayReconnects() throws Exception {
        String name = "amqp-stall";
        String exchange = broker.declareExchange(name, "topic");
        String queue = broker.declareQueue(name, exchange, "#");
        try (StallingProxy proxy = StallingProxy.start(broker.server().host(), broker.server().port())) {
            Map<String, String> config = config(name, exchange);
            config.put("debezium.sink.rabbitmq.connection.host", proxy.host());
            config.put("debezium.sink.rabbitmq.connection.port", Integer.toString(proxy.port()));
            config.put("debezium.sink.rabbitmq.ackTimeout", "3000");
            try (QueueRecorder recorder = broker.record(queue); RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
                    OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", name, 20, EVENTS, PER_SECOND)) {
                recorder.awaitAtLeast(EVENTS / 4, Duration.ofSeconds(60));
                long stalledAt = System.nanoTime();
                proxy.stall();
                Thread.sleep(5_000);
                assertThat(relay.get("/q/health/live").status()).as("health answers while the broker connection hangs").isEqualTo(200);
                proxy.heal();
                writer.awaitDone(STALL);
                Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", name + "-");
                DeliveryCheck check = DeliveryCheck.of(recorder.awaitIds(committed, Duration.ofSeconds(90)), committed);
                FaultIT.report("broker connection frozen half-open for 5 s (stalling proxy; ackTimeout 3 s), then new connections pass: "
                        + check + ", connections through the proxy " + proxy.accepted() + ", longest delivery gap "
                        + FaultIT.longestGapAfter(recorder.arrivalNanos(), stalledAt) + " ms");
                assertThat(check.lost()).isZero();
                assertThat(check.orderViolations()).isEmpty();
                assertThat(proxy.accepted()).as("the relay gave up on the frozen connection and opened a new one").isGreaterThanOrEqualTo(2);
                assertThat(relay.log()).containsAnyOf("no confirm within 3000 ms", "stuck in the socket");
            }
        }
    }

    @Test
    void aFrozenOffsetStoreConnectionTimesOutAndOffsetsAreStoredAgain() throws Exception {
        String name = "pg-stall";
        String exchange = broker.declareExchange(name, "topic");
        String queue = broker.declareQueue(name, exchange, "#");
        try (StallingProxy proxy = StallingProxy.start(db.server().host(), db.server().port())) {
            Map<String, String> config = config(name, exchange);
            config.put("debezium.source.offset.storage.postgres.url", "jdbc:postgresql://" + proxy.host() + ":" + proxy.port() + "/" + db.name());
            config.put("debezium.source.offset.storage.postgres.socket.timeout.ms", "2000");
            config.put("debezium.source.offset.storage.postgres.connect.timeout.ms", "2000");
            try (QueueRecorder recorder = broker.record(queue); RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
                    OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", name, 20, EVENTS, PER_SECOND)) {
                recorder.awaitAtLeast(EVENTS / 4, Duration.ofSeconds(60));
                long stalledAt = System.nanoTime();
                proxy.stall();
                Thread.sleep(6_000);
                String frozenAt = storedOffset(name);
                assertThat(relay.get("/q/health/live").status()).isEqualTo(200);
                proxy.heal();
                writer.awaitDone(STALL);
                Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", name + "-");
                DeliveryCheck check = DeliveryCheck.of(recorder.awaitIds(committed, Duration.ofSeconds(90)), committed);
                await().atMost(Duration.ofSeconds(60)).until(() -> !storedOffset(name).equals(frozenAt));
                FaultIT.report("offset store's PostgreSQL connection frozen half-open for 6 s (socket time-out 2 s), then new connections pass: "
                        + check + ", offsets stored again, connections through the proxy " + proxy.accepted() + ", longest delivery gap "
                        + FaultIT.longestGapAfter(recorder.arrivalNanos(), stalledAt) + " ms");
                assertThat(check.lost()).isZero();
                assertThat(check.orderViolations()).isEmpty();
                assertThat(proxy.accepted()).as("the store gave up on the frozen connection and opened a new one").isGreaterThanOrEqualTo(2);
            }
        }
    }

    @Test
    void healthAnswersWhileClientsHoldHalfSentRequestsOpen() throws Exception {
        String name = "http-stall";
        String exchange = broker.declareExchange(name, "topic");
        try (RelayProcess relay = RelayProcess.start(dir, config(name, exchange)).awaitReady(Duration.ofSeconds(60))) {
            int port = relay.httpPort();
            List<Socket> stalled = new ArrayList<>();
            try {
                for (int i = 0; i < 3; i++) {
                    stalled.add(halfSentRequest(port));
                }
                long t0 = System.nanoTime();
                assertThat(relay.get("/q/health/ready").status()).as("a probe beside three stalled clients").isEqualTo(200);
                long besideThree = (System.nanoTime() - t0) / 1_000_000;
                for (int i = 0; i < 20; i++) {
                    stalled.add(halfSentRequest(port));
                }
                t0 = System.nanoTime();
                await().atMost(Duration.ofSeconds(30)).pollInterval(Duration.ofMillis(200)).until(() -> relay.get("/q/health/live").status() == 200);
                long besideTwentyThree = (System.nanoTime() - t0) / 1_000_000;
                FaultIT.report("HTTP clients holding half-sent requests open: readiness answered in " + besideThree + " ms beside 3 of them, "
                        + besideTwentyThree + " ms beside 23 (request time-out 5 s, 4 handler threads)");
            }
            finally {
                for (Socket s : stalled) {
                    s.close();
                }
            }
        }
    }

    @Test
    void aGracefulStopWhileTheBrokerBlocksPublishingEndsWithinTheGrace() throws Exception {
        String name = "blocked-stop";
        String exchange = broker.declareExchange(name, "topic");
        String queue = broker.declareQueue(name, exchange, "#");
        Map<String, String> config = config(name, exchange);
        config.put("relay.shutdown.grace.ms", "3000");
        try (QueueRecorder recorder = broker.record(queue)) {
            RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
            String watermark = ServerControl.raiseMemoryAlarm();
            int exit;
            long stopMillis;
            try {
                // RabbitMQ tells a connection it is blocked when it next publishes.
                try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", name + "-a", 20, 500, 0)) {
                    writer.awaitDone(STALL);
                }
                await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(relay.get("/q/health/ready").body()).contains("RabbitMQ blocks publishing"));
                Thread.sleep(1_000);
                long t0 = System.nanoTime();
                exit = relay.stop();
                stopMillis = (System.nanoTime() - t0) / 1_000_000;
            }
            finally {
                ServerControl.clearMemoryAlarm(watermark);
            }
            assertThat(exit).as("exit after SIGTERM (128+15), not a kill after the 90 s wait").isEqualTo(143);
            assertThat(stopMillis).as("stopped within the grace and a margin").isLessThan(20_000);
            assertThat(relay.log()).contains("did not all arrive within relay.shutdown.grace.ms");
            try (RelayProcess again = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
                Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", name + "-a");
                DeliveryCheck check = DeliveryCheck.of(recorder.awaitIds(committed, Duration.ofSeconds(60)), committed);
                FaultIT.report("SIGTERM while RabbitMQ blocks publishing (memory alarm), grace 3 s: stopped in " + stopMillis
                        + " ms (exit 143); after the alarm cleared and a restart: " + check);
                assertThat(check.lost()).isZero();
                assertThat(check.orderViolations()).isEmpty();
            }
        }
    }

    /** A request line and half a header, then nothing: the connection stays open. */
    private static Socket halfSentRequest(int port) throws Exception {
        Socket s = new Socket("127.0.0.1", port);
        OutputStream out = s.getOutputStream();
        out.write("GET /q/health/ready HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ".getBytes(StandardCharsets.US_ASCII));
        out.flush();
        return s;
    }

    private static String storedOffset(String relay) throws Exception {
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement(
                "SELECT coalesce(string_agg(encode(offset_value, 'hex'), ','), '') FROM outbox_relay_offsets WHERE namespace = ?")) {
            ps.setString(1, relay);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getString(1);
            }
        }
    }
}
