package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import io.outboxrelay.cli.CliRun;
import io.outboxrelay.testing.DeliveryCheck;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.Progress;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ScratchPostgres;
import io.outboxrelay.testing.SecretsMount;
import io.outboxrelay.testing.ServerControl;
import io.outboxrelay.testing.TestBroker;

/**
 * The relay as {@code deploy/sql/relay-role.sql} makes it — a least-privilege role on a server that
 * takes only scram passwords — with both passwords in a secrets directory laid out and updated as
 * Kubernetes does. While events flow, each password is changed on its server, every connection of
 * the relay is cut, and only then is the file updated: the relay must be refused, say so naming the
 * setting, pick the new value up without a restart, and lose nothing.
 */
class CredentialRotationIT {

    private static final String DB_KEY = "debezium.source.database.password";
    private static final String MQ_KEY = "debezium.sink.rabbitmq.connection.password";
    private static final String RELAY = "rotation";
    private static final String MQ_USER = "outbox_relay_rotation";
    /** Values distinctive enough that finding one in the log means it leaked. */
    private static final String PG_FIRST = "pg-first-Qx81vT";
    private static final String PG_SECOND = "pg-second-Lm27wK";
    private static final String MQ_FIRST = "mq-first-Hd55pR";
    private static final String MQ_SECOND = "mq-second-Zc90nB";
    /** How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. */
    private static final Duration STALL = Duration.ofSeconds(30);

    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    @TempDir
    static Path dir;

    private static ScratchPostgres server;

    @BeforeAll
    static void scramServerWithTheRelayRole() throws Exception {
        server = ScratchPostgres.start(data -> Files.writeString(data.resolve("pg_hba.conf"), "local all all trust\n"
                + "host all postgres 127.0.0.1/32 trust\n"
                + "host all all 127.0.0.1/32 scram-sha-256\nhost replication all 127.0.0.1/32 scram-sha-256\n"),
                "wal_level=logical", "max_replication_slots=8", "max_wal_senders=8", "password_encryption=scram-sha-256");
        try (Connection c = admin("postgres"); Statement s = c.createStatement()) {
            s.execute("CREATE DATABASE app");
        }
        try (Connection c = admin("app"); Statement s = c.createStatement()) {
            s.execute(RelayFiles.OUTBOX_DDL);
        }
        server.runScript(RelayFiles.relayRoleScript(), "app", Map.of("relay_password", "'" + PG_FIRST + "'"));
        ServerControl.addBrokerUser(MQ_USER, MQ_FIRST);
    }

    @AfterAll
    static void stop() {
        ServerControl.deleteBrokerUser(MQ_USER);
        if (server != null) {
            server.close();
        }
    }

    private static Connection admin(String database) throws SQLException {
        return DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + server.port() + "/" + database, "postgres", "");
    }

    @Test
    void bothPasswordsRotateWhileEventsFlowWithoutARestart() throws Exception {
        try (Connection c = DriverManager.getConnection("jdbc:postgresql://127.0.0.1:" + server.port() + "/app", "outbox_relay", "wrong")) {
            throw new AssertionError("the server must refuse a wrong password, or this test proves nothing");
        }
        catch (SQLException e) {
            assertThat(e.getSQLState()).isEqualTo("28P01");
        }
        String exchange = broker.declareExchange(RELAY, "topic");
        String queue = broker.declareQueue(RELAY, exchange, "#");
        SecretsMount secrets = SecretsMount.create(dir.resolve("secrets"), Map.of(DB_KEY, PG_FIRST, MQ_KEY, MQ_FIRST));

        Map<String, String> config = new LinkedHashMap<>();
        config.put("relay.name", RELAY);
        config.put("debezium.source.database.hostname", "127.0.0.1");
        config.put("debezium.source.database.port", Integer.toString(server.port()));
        config.put("debezium.source.database.user", "outbox_relay");
        config.put("debezium.source.database.dbname", "app");
        config.put("debezium.source.table.include.list", "public.outbox_event");
        // What relay-role.sql made: the publication exists, the role may not create one.
        config.put("debezium.source.publication.name", "outbox_relay");
        config.put("debezium.source.publication.autocreate.mode", "disabled");
        config.put("debezium.sink.rabbitmq.connection.host", broker.server().host());
        config.put("debezium.sink.rabbitmq.connection.port", Integer.toString(broker.server().port()));
        config.put("debezium.sink.rabbitmq.connection.username", MQ_USER);
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("debezium.sink.rabbitmq.retry.backoff.max.ms", "1000");
        config.put("relay.restart.backoff.initial.ms", "200");
        config.put("relay.metrics.poll.ms", "1000");
        config.put("relay.restart.backoff.max.ms", "1000");

        // What relay-role.sql grants is what check asks for, with the password from the secrets directory.
        CliRun preflight = CliRun.of("check", "--config", RelayFiles.write(dir, config).toString(), "--secrets-dir", secrets.dir().toString());
        assertThat(preflight.exit()).as(preflight.out() + preflight.err()).isZero();
        assertThat(preflight.out()).contains("outbox_relay").doesNotContain("GRANT", PG_FIRST, MQ_FIRST);

        try (RelayProcess relay = RelayProcess.start(dir, config, secrets.dir()).awaitReady(Duration.ofSeconds(60));
                QueueRecorder recorder = broker.record(queue)) {
            long pid = relay.pid();
            try (OutboxWriter writer = OutboxWriter.start(() -> admin("app"), "outbox_event", RELAY, 20, 2_400, 200)) {
                recorder.awaitAtLeast(300, Duration.ofSeconds(60));

                // PostgreSQL first: the role's password changes, every connection of the role is cut, the file is not updated yet.
                try (Connection c = admin("app"); Statement s = c.createStatement()) {
                    s.execute("ALTER ROLE outbox_relay PASSWORD '" + PG_SECOND + "'");
                    cutConnections(s);
                }
                String named = "password authentication failed for user \"outbox_relay\": check debezium.source.database.user and "
                        + "debezium.source.database.password (read again from " + secrets.dir().resolve(DB_KEY).toAbsolutePath() + " at every attempt)";
                await("the refusal names the setting and the file it is read from").atMost(Duration.ofSeconds(60)).until(() -> relay.log().contains(named));
                secrets.update(Map.of(DB_KEY, PG_SECOND, MQ_KEY, MQ_FIRST));
                relay.awaitReady(Duration.ofSeconds(60));
                int afterPostgres = recorder.count();

                // Then RabbitMQ, the same way.
                ServerControl.changeBrokerPassword(MQ_USER, MQ_SECOND);
                assertThat(ServerControl.closeBrokerConnections("outbox-relay " + RELAY)).as("the relay's connection was found").isEqualTo(1);
                String refused = "RabbitMQ refused the log-in of " + MQ_USER;
                await().atMost(Duration.ofSeconds(60)).until(() -> relay.log().contains(refused));
                assertThat(relay.log()).contains("check debezium.sink.rabbitmq.connection.username and debezium.sink.rabbitmq.connection.password (read again from "
                        + secrets.dir().resolve(MQ_KEY).toAbsolutePath() + " at every attempt)");
                secrets.update(Map.of(DB_KEY, PG_SECOND, MQ_KEY, MQ_SECOND));
                relay.awaitReady(Duration.ofSeconds(60));
                writer.awaitDone(STALL);
                Progress.atLeast("deliveries after the PostgreSQL rotation", afterPostgres + 1, STALL, recorder::count);
            }

            Set<String> committed = OutboxWriter.committedIds(() -> admin("app"), "outbox_event", RELAY);
            assertThat(committed).hasSize(2_400);
            recorder.awaitIds(committed, Duration.ofSeconds(60));
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitQuiet(Duration.ofSeconds(2)), committed);
            assertThat(check.lost()).as("nothing lost: " + check).isZero();
            assertThat(check.orderViolations()).as("per-aggregate order: " + check).isEmpty();

            assertThat(relay.isAlive()).isTrue();
            assertThat(relay.pid()).as("the same process went on").isEqualTo(pid);
            String log = relay.log();
            assertThat(log).contains("Picked up a changed credential: " + DB_KEY, "Picked up a changed credential: " + MQ_KEY);
            for (String secret : List.of(PG_FIRST, PG_SECOND, MQ_FIRST, MQ_SECOND)) {
                assertThat(log).as("no password in the log").doesNotContain(secret);
            }
            try (Connection c = admin("app"); Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SELECT count(*) FROM pg_stat_activity WHERE usename = 'outbox_relay'")) {
                rs.next();
                assertThat(rs.getInt(1)).as("the relay is connected again as the role").isPositive();
            }
        }
    }

    /** Terminates every backend of the relay's role: the walsender, the offset store's, the dead-letter table's, the gauges'. */
    private static void cutConnections(Statement s) throws SQLException {
        try (ResultSet rs = s.executeQuery("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = 'outbox_relay'")) {
            rs.next();
            assertThat(rs.getInt(1)).as("connections of the relay cut").isGreaterThanOrEqualTo(2);
        }
    }
}
