package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.stream.Address;
import com.rabbitmq.stream.Environment;

import io.netty.handler.ssl.SslContextBuilder;

import io.outboxrelay.cli.CliRun;
import io.outboxrelay.testing.DeliveryCheck;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ScratchRabbit;
import io.outboxrelay.testing.StreamedMessage;
import io.outboxrelay.testing.TestStreams;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestCertificates;
import io.outboxrelay.testing.TestDatabase;

/**
 * RabbitMQ over TLS, on a second node whose listener takes only TLS (certificate for localhost
 * only): verified by default whenever TLS is on, a wrong host name or an unknown CA refused, and a
 * client certificate with the EXTERNAL mechanism instead of a password.
 */
class TlsRabbitIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker unused = new TestBroker();

    /** How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. */
    private static final Duration STALL = Duration.ofSeconds(30);

    @TempDir
    static Path dir;

    private static TestCertificates certs;
    private static ScratchRabbit rabbit;

    @BeforeAll
    static void tlsNode() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
        certs = TestCertificates.create(dir.resolve("certs"), "relay-external");
        rabbit = ScratchRabbit.startTls(certs);
        rabbit.addUser("relay-external", "not-used-" + System.nanoTime());
    }

    @AfterAll
    static void stop() {
        if (rabbit != null) {
            rabbit.close();
        }
    }

    private Map<String, String> config(String name, String host) {
        Map<String, String> c = RelayFiles.minimalConfig(db, unused, name);
        c.put("debezium.sink.rabbitmq.connection.host", host);
        c.put("debezium.sink.rabbitmq.connection.port", Integer.toString(rabbit.port()));
        c.put("debezium.sink.rabbitmq.connection.ssl.enabled", "true");
        c.put("debezium.sink.rabbitmq.exchange", "amq.topic");
        return c;
    }

    private static Map<String, String> trusting(Map<String, String> c) {
        c.put("debezium.sink.rabbitmq.connection.ssl.trust.store", certs.trustStore().toString());
        c.put("debezium.sink.rabbitmq.connection.ssl.trust.store.password", TestCertificates.STORE_PASSWORD);
        c.put("debezium.sink.rabbitmq.connection.ssl.trust.store.type", "PKCS12");
        return c;
    }

    @Test
    void verifiedTlsDeliversAndCheckSaysWhatWasVerified() throws Exception {
        Map<String, String> config = trusting(config("tls-mq", "localhost"));
        assertThat(deliver(config, "tls-mq")).isZero();
        assertThat(check(config)).containsPattern("\\[ OK \\] RabbitMQ connection is TLS \\(TLSv1\\.[23], [A-Z0-9_]+\\), server certificate and host "
                + "name verified").doesNotContain("[FAIL]");
    }

    @Test
    void tlsAloneVerifiesTheServerAgainstTheJvmTrustStore() throws Exception {
        // Before, ssl.enabled=true alone trusted any certificate: this test CA is in no JVM trust store, so it must be refused.
        String out = check(config("tls-untrusted", "localhost"));
        assertThat(out).contains("[FAIL] RabbitMQ at localhost:" + rabbit.port() + "/ as guest refused:").containsIgnoringCase("certification path");
    }

    @Test
    void aCertificateForAnotherHostNameIsRefused() throws Exception {
        String out = check(trusting(config("tls-wrong-host", "127.0.0.1")));
        assertThat(out).contains("[FAIL] RabbitMQ at 127.0.0.1:" + rabbit.port() + "/ as guest refused:").contains("127.0.0.1");
        try (RelayProcess relay = RelayProcess.start(dir, trusting(config("tls-wrong-host", "127.0.0.1")))) {
            org.awaitility.Awaitility.await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(relay.log())
                    .contains("cannot connect to RabbitMQ (debezium.sink.rabbitmq.connection.*)")
                    .contains("RabbitMQ connection refused for outbox-relay tls-wrong-host: 127.0.0.1:" + rabbit.port() + "/ as guest, TLS: "
                            + "No subject alternative names matching IP address 127.0.0.1 found"));
            assertThat(relay.log()).doesNotContain(TestCertificates.STORE_PASSWORD);
            assertThat(relay.get("/q/health/ready").status()).as("never ready against a server it cannot verify").isNotEqualTo(200);
        }
    }

    @Test
    void turningVerificationOffIsExplicitAndAWarning() throws Exception {
        Map<String, String> config = config("tls-unverified", "localhost");
        config.put("debezium.sink.rabbitmq.connection.ssl.validate.server.certificate", "false");
        config.put("debezium.sink.rabbitmq.connection.ssl.verify.hostname", "false");
        String out = check(config);
        assertThat(out).contains("[WARN] debezium.sink.rabbitmq.connection.ssl.validate.server.certificate=false: the relay accepts any certificate",
                "[WARN] debezium.sink.rabbitmq.connection.ssl.verify.hostname=false", "[WARN] RabbitMQ connection is TLS (");
    }

    @Test
    void aClientCertificateWithExternalReplacesThePassword() throws Exception {
        Map<String, String> config = trusting(config("tls-external", "localhost"));
        config.remove("debezium.sink.rabbitmq.connection.username");
        config.remove("debezium.sink.rabbitmq.connection.password");
        config.put("debezium.sink.rabbitmq.sasl.mechanism", "external");
        config.put("debezium.sink.rabbitmq.connection.ssl.key.store", certs.clientKeyStore().toString());
        config.put("debezium.sink.rabbitmq.connection.ssl.key.store.password", TestCertificates.STORE_PASSWORD);
        config.put("debezium.sink.rabbitmq.connection.ssl.key.store.type", "PKCS12");
        assertThat(check(config)).contains("as the client certificate's user (EXTERNAL)", "client certificate (EXTERNAL)").doesNotContain("[FAIL]");
        assertThat(deliver(config, "tls-external", () -> assertThat(rabbit.ctl("list_connections", "user", "auth_mechanism"))
                .as("the relay's connection authenticated by its certificate").contains("relay-external\tEXTERNAL"))).isZero();
    }

    private Map<String, String> streamConfig(String name, String host, String stream) {
        Map<String, String> c = RelayFiles.intoStream(RelayFiles.minimalConfig(db, unused, name), host, rabbit.streamPort(), "guest", "guest", stream);
        c.put("debezium.sink.rabbitmqstream.tls.enable", "true");
        c.put("debezium.sink.rabbitmqstream.tls.trust.store", certs.trustStore().toString());
        c.put("debezium.sink.rabbitmqstream.tls.trust.store.password", TestCertificates.STORE_PASSWORD);
        return c;
    }

    /** The stream sink over TLS: verified by default, refused for a certificate of another name, unless tls.serverName names it. */
    @Test
    void streamsOverTlsVerifyTheHostOrTheServerName() throws Exception {
        assertThat(check(streamConfig("tls-stream", "localhost", "tls-stream")))
                .contains("[ OK ] stream connection is TLS, server certificate and host name verified").doesNotContain("[FAIL]");
        String byAddress = check(streamConfig("tls-stream-ip", "127.0.0.1", "tls-stream"));
        assertThat(byAddress).contains("[FAIL] TLS to RabbitMQ Streams at 127.0.0.1:" + rabbit.streamPort() + " failed: ")
                .contains("No subject alternative names matching IP address 127.0.0.1 found").contains("tls.serverName");
        Map<String, String> config = streamConfig("tls-stream-sni", "127.0.0.1", "tls-stream-sni");
        config.put("debezium.sink.rabbitmqstream.tls.serverName", "localhost");
        assertThat(check(config)).contains("[ OK ] stream connection is TLS, server certificate and host name verified").doesNotContain("[FAIL]");
        try (RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", "tls-stream-sni", 5, 100, 500)) {
                writer.awaitDone(STALL);
            }
            Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", "tls-stream-sni-");
            DeliveryCheck check = DeliveryCheck.ofStream(readStream("tls-stream-sni", committed.size()), committed);
            FaultIT.report("RabbitMQ Streams over verified TLS, by address with tls.serverName: " + check);
            assertThat(check.lost()).isZero();
            assertThat(check.duplicates()).isZero();
            assertThat(relay.log()).doesNotContain(TestCertificates.STORE_PASSWORD);
        }
    }

    /** Every message of {@code stream} on the scratch node, read by the test's own verified TLS consumer. */
    private static List<StreamedMessage> readStream(String stream, int expected) throws Exception {
        Address entry = new Address("localhost", rabbit.streamPort());
        try (Environment env = Environment.builder().host("localhost").port(rabbit.streamPort()).addressResolver(a -> entry)
                .username("guest").password("guest")
                .tls().sslContext(SslContextBuilder.forClient().trustManager(certs.caCert().toFile()).endpointIdentificationAlgorithm("HTTPS").build())
                .environmentBuilder().build()) {
            return TestStreams.readAll(env, stream, expected, Duration.ofMillis(500), Duration.ofSeconds(60));
        }
    }

    private int deliver(Map<String, String> config, String name) throws Exception {
        return deliver(config, name, () -> { });
    }

    /** Runs the relay on {@code config}, writes 100 events, runs {@code whileRunning}, returns how many were lost. */
    private int deliver(Map<String, String> config, String name, Runnable whileRunning) throws Exception {
        Connection consumer = rabbit.connect(certs, "guest", "guest");
        String queue;
        try (Channel ch = consumer.createChannel()) {
            queue = ch.queueDeclare(name, false, false, true, null).getQueue();
            ch.queueBind(queue, "amq.topic", "#");
        }
        try (QueueRecorder recorder = QueueRecorder.on(consumer, queue); RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", name, 5, 100, 500)) {
                writer.awaitDone(STALL);
            }
            Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", name + "-");
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitIds(committed, Duration.ofSeconds(60)), committed);
            whileRunning.run();
            FaultIT.report("RabbitMQ over verified TLS" + (config.containsKey("debezium.sink.rabbitmq.sasl.mechanism") ? " with a client certificate (EXTERNAL)" : "")
                    + ": " + check);
            assertThat(relay.log()).doesNotContain(TestCertificates.STORE_PASSWORD);
            return check.lost();
        }
    }

    private String check(Map<String, String> config) throws Exception {
        return CliRun.of("check", "--config", RelayFiles.write(dir, config).toString()).out();
    }
}
