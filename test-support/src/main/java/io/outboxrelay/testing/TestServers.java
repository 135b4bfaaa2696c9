package io.outboxrelay.testing;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Map;

import org.testcontainers.DockerClientFactory;
import org.testcontainers.postgresql.PostgreSQLContainer;
import org.testcontainers.rabbitmq.RabbitMQContainer;

/**
 * Finds the real servers every integration test talks to. Order of choice: endpoints given in
 * environment variables; else Testcontainers when a Docker engine answers; else the local servers
 * that {@code deploy/local/services.sh} installs and starts.
 *
 * <ul>
 * <li>{@code OUTBOX_RELAY_TEST_PG} — {@code host:port}; with {@code OUTBOX_RELAY_TEST_PG_USER} and
 * {@code OUTBOX_RELAY_TEST_PG_PASSWORD} (defaults {@code postgres} and empty). The role must be able to
 * create databases and replicate.</li>
 * <li>{@code OUTBOX_RELAY_TEST_AMQP} — {@code host:port}; with {@code OUTBOX_RELAY_TEST_AMQP_USER} and
 * {@code OUTBOX_RELAY_TEST_AMQP_PASSWORD} (defaults {@code guest}/{@code guest}).</li>
 * </ul>
 */
public final class TestServers {

    public record PostgresEndpoint(String host, int port, String user, String password) {
        public String jdbcUrl(String database) {
            return "jdbc:postgresql://" + host + ":" + port + "/" + database;
        }

        public Connection connect(String database) throws SQLException {
            return DriverManager.getConnection(jdbcUrl(database), user, password);
        }
    }

    public record RabbitEndpoint(String host, int port, String user, String password) {
    }

    /** RabbitMQ's stream listener: {@code OUTBOX_RELAY_TEST_STREAM} ({@code host:port}), else port 5552 of the AMQP host. */
    public record StreamEndpoint(String host, int port) {
    }

    private static PostgresEndpoint postgres;
    private static RabbitEndpoint rabbit;

    private TestServers() {
    }

    public static synchronized PostgresEndpoint postgres() {
        if (postgres == null) {
            postgres = resolvePostgres(System.getenv());
            requireLogicalDecoding(postgres);
        }
        return postgres;
    }

    public static StreamEndpoint streams() {
        String given = System.getenv("OUTBOX_RELAY_TEST_STREAM");
        if (given != null && !given.isBlank()) {
            HostPort hp = HostPort.parse(given, 5552);
            return new StreamEndpoint(hp.host, hp.port);
        }
        return new StreamEndpoint(rabbitMq().host(), 5552);
    }

    public static synchronized RabbitEndpoint rabbitMq() {
        if (rabbit == null) {
            rabbit = resolveRabbit(System.getenv());
        }
        return rabbit;
    }

    private static PostgresEndpoint resolvePostgres(Map<String, String> env) {
        String given = env.get("OUTBOX_RELAY_TEST_PG");
        if (given != null && !given.isBlank()) {
            HostPort hp = HostPort.parse(given, 5432);
            return new PostgresEndpoint(hp.host, hp.port, env.getOrDefault("OUTBOX_RELAY_TEST_PG_USER", "postgres"),
                    env.getOrDefault("OUTBOX_RELAY_TEST_PG_PASSWORD", ""));
        }
        if (dockerAvailable()) {
            PostgreSQLContainer container = new PostgreSQLContainer("postgres:15")
                    .withCommand("postgres", "-c", "wal_level=logical", "-c", "max_replication_slots=32", "-c", "max_wal_senders=32");
            container.start();
            return new PostgresEndpoint(container.getHost(), container.getMappedPort(5432), container.getUsername(), container.getPassword());
        }
        return new PostgresEndpoint("127.0.0.1", 5432, "postgres", "");
    }

    private static RabbitEndpoint resolveRabbit(Map<String, String> env) {
        String given = env.get("OUTBOX_RELAY_TEST_AMQP");
        if (given != null && !given.isBlank()) {
            HostPort hp = HostPort.parse(given, 5672);
            return new RabbitEndpoint(hp.host, hp.port, env.getOrDefault("OUTBOX_RELAY_TEST_AMQP_USER", "guest"),
                    env.getOrDefault("OUTBOX_RELAY_TEST_AMQP_PASSWORD", "guest"));
        }
        if (dockerAvailable()) {
            RabbitMQContainer container = new RabbitMQContainer("rabbitmq:3.13-management");
            container.start();
            return new RabbitEndpoint(container.getHost(), container.getAmqpPort(), container.getAdminUsername(), container.getAdminPassword());
        }
        return new RabbitEndpoint("127.0.0.1", 5672, "guest", "guest");
    }

    private static boolean dockerAvailable() {
        // Asking Testcontainers on a machine without Docker logs an alarming error; look for an engine first.
        if (System.getenv("DOCKER_HOST") == null && !java.nio.file.Files.exists(java.nio.file.Path.of("/var/run/docker.sock"))) {
            return false;
        }
        try {
            return DockerClientFactory.instance().isDockerAvailable();
        }
        catch (RuntimeException | LinkageError e) {
            return false;
        }
    }

    private static void requireLogicalDecoding(PostgresEndpoint pg) {
        try (Connection c = pg.connect("postgres"); Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SHOW wal_level")) {
            rs.next();
            if (!"logical".equals(rs.getString(1))) {
                throw new IllegalStateException("PostgreSQL at " + pg.host() + ":" + pg.port() + " runs with wal_level="
                        + rs.getString(1) + "; the tests need logical. Run deploy/local/services.sh first.");
            }
        }
        catch (SQLException e) {
            throw new IllegalStateException("PostgreSQL at " + pg.host() + ":" + pg.port() + " does not answer ("
                    + e.getMessage() + "). Run deploy/local/services.sh first, or set OUTBOX_RELAY_TEST_PG.", e);
        }
    }

    private record HostPort(String host, int port) {
        static HostPort parse(String value, int defaultPort) {
            int colon = value.lastIndexOf(':');
            return colon < 0 ? new HostPort(value, defaultPort)
                    : new HostPort(value.substring(0, colon), Integer.parseInt(value.substring(colon + 1)));
        }
    }
}
