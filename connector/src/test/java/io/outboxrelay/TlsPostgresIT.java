package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import io.outboxrelay.cli.CliRun;
import io.outboxrelay.testing.DeliveryCheck;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ScratchPostgres;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestCertificates;

/**
 * A PostgreSQL that accepts only TLS with client certificates ({@code hostssl … cert}), as issue 15
 * found it: every connection of the relay — Debezium's, and the relay's own for dead letters,
 * offsets, gauges and {@code check} — must carry Debezium's {@code database.ssl*} settings.
 */
class TlsPostgresIT {

    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    /** How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. */
    private static final Duration STALL = Duration.ofSeconds(30);

    @TempDir
    static Path dir;

    private static TestCertificates certs;
    private static ScratchPostgres server;

    @BeforeAll
    static void tlsOnlyServer() throws Exception {
        certs = TestCertificates.create(dir.resolve("certs"), "postgres");
        server = ScratchPostgres.start(data -> {
            Files.copy(certs.serverCert(), data.resolve("server.crt"));
            Files.copy(certs.serverKey(), data.resolve("server.key"));
            Files.copy(certs.caCert(), data.resolve("root.crt"));
            Files.writeString(data.resolve("pg_hba.conf"), "local all all trust\n"
                    + "hostssl all all 127.0.0.1/32 cert\nhostssl replication all 127.0.0.1/32 cert\n");
        }, "ssl=on", "ssl_cert_file=server.crt", "ssl_key_file=server.key", "ssl_ca_file=root.crt", "wal_level=logical",
                "max_replication_slots=8", "max_wal_senders=8");
        Files.setPosixFilePermissions(certs.clientKeyPk8(), java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
        try (Connection c = connect(); Statement s = c.createStatement()) {
            s.execute(RelayFiles.OUTBOX_DDL);
        }
    }

    @AfterAll
    static void stop() {
        if (server != null) {
            server.close();
        }
    }

    /** The test's own connection: TLS, verified, with the client certificate, like the relay's. */
    private static Connection connect() throws java.sql.SQLException {
        Properties p = new Properties();
        p.setProperty("user", "postgres");
        p.setProperty("sslmode", "verify-full");
        p.setProperty("sslrootcert", certs.caCert().toString());
        p.setProperty("sslcert", certs.clientCert().toString());
        p.setProperty("sslkey", certs.clientKeyPk8().toString());
        return DriverManager.getConnection("jdbc:postgresql://localhost:" + server.port() + "/postgres", p);
    }

    private Map<String, String> config(String name, String exchange, String host) {
        Map<String, String> c = new LinkedHashMap<>();
        c.put("relay.name", name);
        c.put("debezium.source.database.hostname", host);
        c.put("debezium.source.database.port", Integer.toString(server.port()));
        c.put("debezium.source.database.user", "postgres");
        c.put("debezium.source.database.dbname", "postgres");
        c.put("debezium.source.database.sslmode", "verify-full");
        c.put("debezium.source.database.sslrootcert", certs.caCert().toString());
        c.put("debezium.source.database.sslcert", certs.clientCert().toString());
        c.put("debezium.source.database.sslkey", certs.clientKeyPk8().toString());
        c.put("debezium.source.table.include.list", "public.outbox_event");
        c.put("debezium.transforms.outbox.routing.key.template", "${aggregatetype}");
        c.put("debezium.sink.rabbitmq.connection.host", broker.server().host());
        c.put("debezium.sink.rabbitmq.connection.port", Integer.toString(broker.server().port()));
        c.put("debezium.sink.rabbitmq.connection.username", broker.server().user());
        c.put("debezium.sink.rabbitmq.connection.password", broker.server().password());
        c.put("debezium.sink.rabbitmq.exchange", exchange);
        return c;
    }

    @Test
    void everyConnectionOfTheRelayTakesAVerifiedTlsOnlyServerWithClientCertificates() throws Exception {
        String exchange = broker.declareExchange("tls", "topic");
        String queue = broker.declareQueue("tls", exchange, "order");
        Map<String, String> config = config("tls", exchange, "localhost");
        try (QueueRecorder recorder = broker.record(queue); RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            try (OutboxWriter writer = OutboxWriter.start(TlsPostgresIT::connect, "outbox_event", "tls", 5, 200, 500)) {
                writer.awaitDone(STALL);
            }
            String unroutable;
            try (Connection c = connect(); PreparedStatement ps = c.prepareStatement("INSERT INTO outbox_event (aggregatetype, aggregateid, type, payload) "
                    + "VALUES ('nowhere', 'tls-x', 'T', '{}') RETURNING id::text"); ResultSet rs = ps.executeQuery()) {
                rs.next();
                unroutable = rs.getString(1);
            }
            Set<String> committed = OutboxWriter.committedIds(TlsPostgresIT::connect, "outbox_event", "tls-");
            committed.remove(unroutable);
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitIds(committed, Duration.ofSeconds(60)), committed);
            assertThat(check.lost()).isZero();
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(count("SELECT count(*) FROM outbox_relay_dead_letter WHERE event_id = '"
                    + unroutable + "'")).as("the dead letter went over TLS").isEqualTo(1));
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(count("SELECT count(*) FROM outbox_relay_offsets WHERE namespace = 'tls'"))
                    .as("the offset store connects over TLS").isPositive());
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(relay.metric("outbox_relay_source_poll_failing{relay=\"tls\"}"))
                    .as("the gauges connect over TLS").isEqualTo(0.0));
            assertThat(relay.log()).doesNotContain("connection requires a valid client certificate");
            FaultIT.report("PostgreSQL accepting only verified TLS with client certificates (hostssl … cert): " + check
                    + ", the unroutable event parked, offsets stored, gauges polled over TLS");
        }

        String out = check(config);
        assertThat(out).containsPattern("\\[ OK \\] PostgreSQL connection is TLS \\(TLSv1\\.[23], [^)]+\\), server certificate and host name verified "
                + "\\(sslmode=verify-full\\)");
        assertThat(out).doesNotContain("[FAIL]");
    }

    @Test
    void aServerCertificateForAnotherHostNameIsRefusedByCheck() throws Exception {
        String out = check(config("tls-wrong-host", "amq.topic", "127.0.0.1"));
        assertThat(out).contains("[FAIL] PostgreSQL at 127.0.0.1:" + server.port() + "/postgres as postgres refused:")
                .containsIgnoringCase("host");
    }

    /**
     * A client key that others may read is refused by pgjdbc before any byte is sent. The relay
     * must say so, with the setting to fix, rather than send the user to create the lease table.
     */
    @Test
    void aClientKeyReadableByOthersIsNamedAsTheCause() throws Exception {
        Path loose = dir.resolve("loose-client.pk8");
        Files.copy(certs.clientKeyPk8(), loose, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        Files.setPosixFilePermissions(loose, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        Map<String, String> config = config("tls-loose-key", "amq.topic", "localhost");
        config.put("debezium.source.database.sslkey", loose.toString());
        try (RelayProcess relay = RelayProcess.start(dir, config)) {
            await().atMost(Duration.ofSeconds(60)).until(() -> relay.log().contains("cannot reach the lease table"));
            assertThat(relay.log()).contains("the TLS client key is refused: ").contains("has group or world access")
                    .contains("(the file in debezium.source.database.sslkey (or debezium.source.offset.storage.postgres.driver.sslkey) must be readable by its owner only: chmod 600)")
                    .doesNotContain("create it as deploy/sql/relay-role.sql does");
            assertThat(relay.get("/q/health/ready").status()).as("not ready while it cannot reach the lease").isEqualTo(503);
        }
    }

    private String check(Map<String, String> config) throws Exception {
        return CliRun.of("check", "--config", RelayFiles.write(dir, config).toString()).out();
    }

    private static long count(String sql) throws Exception {
        try (Connection c = connect(); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            rs.next();
            return rs.getLong(1);
        }
    }
}
