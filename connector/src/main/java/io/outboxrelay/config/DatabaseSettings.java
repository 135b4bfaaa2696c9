package io.outboxrelay.config;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import io.outboxrelay.audit.ConnectionAudit;
import io.outboxrelay.credentials.Password;

/**
 * The source database as the connector sees it; the offset store and dead-letter table default to it.
 * Every connection the relay opens itself comes from {@link #connect}, with time-outs and TCP
 * keep-alive: a half-open connection (a stalled network path, a server that froze) then fails and
 * is retried instead of stalling whatever holds it.
 *
 * The TLS settings Debezium's own connections use ({@code database.sslmode}, {@code sslrootcert},
 * {@code sslcert}, {@code sslkey}, {@code sslpassword}, {@code sslfactory}) reach these too, so a
 * server that accepts only verified TLS with client certificates takes every connection of the relay.
 *
 * @param password        fixed, or a secrets-directory file read again at every connection (a rotated password needs no restart)
 * @param connectTimeout  {@code relay.database.connect.timeout.ms}: TCP connect and log-in
 * @param socketTimeout   {@code relay.database.socket.timeout.ms}: the longest wait for one answer
 * @param tls             pgjdbc's TLS properties (names without {@code database.}), as Debezium is given them
 */
public record DatabaseSettings(String host, int port, String user, Password password, String database, Duration connectTimeout, Duration socketTimeout,
                               Map<String, String> tls) {

    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(10);
    public static final Duration DEFAULT_SOCKET_TIMEOUT = Duration.ofSeconds(30);

    /** pgjdbc's TLS properties, as Debezium's PostgreSQL connector names them under {@code database.}. */
    public static final List<String> TLS_PROPERTIES = List.of("sslmode", "sslrootcert", "sslcert", "sslkey", "sslpassword", "sslfactory");

    public DatabaseSettings {
        tls = Map.copyOf(tls);
    }

    public DatabaseSettings(String host, int port, String user, String password, String database) {
        this(host, port, user, Password.fixed(password), database, DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCKET_TIMEOUT, Map.of());
    }

    /** pgjdbc's {@code sslmode} for these connections: what was set, else pgjdbc's default {@code prefer}. */
    public String sslMode() {
        return tls.getOrDefault("sslmode", "prefer");
    }

    public String jdbcUrl() {
        return "jdbc:postgresql://" + host + ":" + port + "/" + database;
    }

    /** A new JDBC connection, named {@code applicationName} in {@code pg_stat_activity}. */
    public Connection connect(String applicationName) throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", user);
        props.putAll(password.pgjdbcProperties());
        props.setProperty("ApplicationName", applicationName);
        // pgjdbc takes whole seconds; 0 would mean "wait forever", so anything shorter rounds up to 1.
        props.setProperty("connectTimeout", Long.toString(seconds(connectTimeout)));
        props.setProperty("loginTimeout", Long.toString(seconds(connectTimeout)));
        props.setProperty("socketTimeout", Long.toString(seconds(socketTimeout)));
        props.setProperty("tcpKeepAlive", "true");
        tls.forEach(props::setProperty);
        Connection c;
        try {
            c = DriverManager.getConnection(jdbcUrl(), props);
        }
        catch (SQLException e) {
            SQLException named = e;
            if ("28P01".equals(e.getSQLState())) {
                named = new SQLException(e.getMessage() + ": check debezium.source.database.user and debezium.source.database.password"
                        + password.whereToRotate(), e.getSQLState(), e);
            }
            ConnectionAudit.refused("PostgreSQL", applicationName, host + ":" + port + "/" + database, user, "sslmode=" + sslMode(), named.getMessage());
            throw named;
        }
        ConnectionAudit.opened("PostgreSQL", applicationName, host + ":" + port + "/" + database, user, tlsFacts(c));
        return c;
    }

    /** What pg_stat_ssl says of a fresh connection, for the access trail; "TLS unknown" where it cannot be asked. */
    private String tlsFacts(Connection c) {
        try (Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()")) {
            if (rs.next() && rs.getBoolean(1)) {
                return "TLS " + rs.getString(2) + " " + rs.getString(3) + " (sslmode=" + sslMode() + ")";
            }
            return "not TLS (sslmode=" + sslMode() + ")";
        }
        catch (SQLException e) {
            return "TLS unknown (sslmode=" + sslMode() + ")";
        }
    }

    private static long seconds(Duration d) {
        return Math.max(1, (d.toMillis() + 999) / 1000);
    }

    @Override
    public String toString() {
        return user + "@" + host + ":" + port + "/" + database;
    }
}
