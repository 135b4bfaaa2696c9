package io.outboxrelay.bench;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestServers;

/** Starts the relay as users run it (bin/outbox-relay, the shipped JVM options) against the benchmark's database and exchange. */
final class BenchRelay {

    static final String EXCHANGE = "outbox-relay-bench";
    static final String QUEUE = "outbox-relay-bench";

    private BenchRelay() {
    }

    /**
     * Declares (and empties) the exchange and queue on a connection of its own: declared on the
     * consumer's connection, they would be recorded for recovery against a closed channel.
     */
    static void declareTopology(TestBroker broker) throws java.io.IOException, java.util.concurrent.TimeoutException {
        try (com.rabbitmq.client.Connection c = broker.newConnection(); com.rabbitmq.client.Channel ch = c.createChannel()) {
            ch.exchangeDeclare(EXCHANGE, "topic", true);
            ch.queueDeclare(QUEUE, true, false, false, null);
            ch.queueBind(QUEUE, EXCHANGE, "#");
            ch.queuePurge(QUEUE);
        }
    }

    static Map<String, String> config(BenchDatabase db, String relayName) {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("relay.name", relayName);
        p.putAll(endpoints(db));
        p.put("debezium.transforms.outbox.routing.key.template", "${aggregatetype}.${type}");
        return p;
    }

    /**
     * Where to read and where to publish, in Debezium Server's vocabulary: the same lines configure
     * the relay and Debezium Server in the comparison.
     */
    static Map<String, String> endpoints(BenchDatabase db) {
        TestServers.PostgresEndpoint pg = db.server();
        TestServers.RabbitEndpoint rabbit = TestServers.rabbitMq();
        Map<String, String> p = new LinkedHashMap<>();
        p.put("debezium.source.database.hostname", pg.host());
        p.put("debezium.source.database.port", Integer.toString(pg.port()));
        p.put("debezium.source.database.user", pg.user());
        p.put("debezium.source.database.password", pg.password());
        p.put("debezium.source.database.dbname", BenchDatabase.NAME);
        p.put("debezium.source.table.include.list", "public.outbox_event");
        p.put("debezium.sink.rabbitmq.connection.host", rabbit.host());
        p.put("debezium.sink.rabbitmq.connection.port", Integer.toString(rabbit.port()));
        p.put("debezium.sink.rabbitmq.connection.username", rabbit.user());
        p.put("debezium.sink.rabbitmq.connection.password", rabbit.password());
        p.put("debezium.sink.rabbitmq.exchange", EXCHANGE);
        return p;
    }

    /** A stream of its own for each run and subject, so that every run reads only its own messages. */
    static String streamName(String slot, String subject) {
        return "outbox-relay-bench-" + subject + "-" + slot;
    }

    /** The stream sink's lines, in Debezium Server's vocabulary, for the relay and Debezium Server alike. */
    static Map<String, String> streamEndpoints(String stream) {
        TestServers.StreamEndpoint s = TestServers.streams();
        TestServers.RabbitEndpoint rabbit = TestServers.rabbitMq();
        Map<String, String> p = new LinkedHashMap<>();
        p.put("debezium.sink.type", "rabbitmqstream");
        p.put("debezium.sink.rabbitmqstream.host", s.host());
        p.put("debezium.sink.rabbitmqstream.port", Integer.toString(s.port()));
        p.put("debezium.sink.rabbitmqstream.username", rabbit.user());
        p.put("debezium.sink.rabbitmqstream.password", rabbit.password());
        p.put("debezium.sink.rabbitmqstream.stream", stream);
        return p;
    }

    /** Starts the relay and returns it with the seconds from process start to readiness (streaming). */
    static Started start(Map<String, String> config) throws Exception {
        Path dir = Files.createTempDirectory("outbox-relay-bench");
        long t0 = System.nanoTime();
        RelayProcess relay = RelayProcess.start(dir, config);
        long deadline = t0 + Duration.ofSeconds(60).toNanos();
        while (relay.get("/q/health/ready").status() != 200) {
            if (!relay.isAlive() || System.nanoTime() > deadline) {
                String log = relay.log();
                // Not left running: it would hold its slot, and the next run's database, after the benchmark gave up on it.
                relay.kill();
                throw new IllegalStateException("the relay did not become ready:\n" + log);
            }
            Thread.sleep(10);
        }
        return new Started(relay, (System.nanoTime() - t0) / 1e9);
    }

    record Started(RelayProcess relay, double startSeconds) {
    }
}
