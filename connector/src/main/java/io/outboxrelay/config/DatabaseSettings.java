package io.outboxrelay.config;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Properties;

/**
 * The source database as the connector sees it; the offset store and dead-letter table default to it.
 * Every connection the relay opens itself comes from {@link #connect}, with time-outs and TCP
 * keep-alive: a half-open connection (a stalled network path, a server that froze) then fails and
 * is retried instead of stalling whatever holds it.
 *
 * @param connectTimeout  {@code relay.database.connect.timeout.ms}: TCP connect and log-in
 * @param socketTimeout   {@code relay.database.socket.timeout.ms}: the longest wait for one answer
 */
public record DatabaseSettings(String host, int port, String user, String password, String database, Duration connectTimeout, Duration socketTimeout) {

    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(10);
    public static final Duration DEFAULT_SOCKET_TIMEOUT = Duration.ofSeconds(30);

    public DatabaseSettings(String host, int port, String user, String password, String database) {
        this(host, port, user, password, database, DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCKET_TIMEOUT);
    }

    public String jdbcUrl() {
        return "jdbc:postgresql://" + host + ":" + port + "/" + database;
    }

    /** A new JDBC connection, named {@code applicationName} in {@code pg_stat_activity}. */
    public Connection connect(String applicationName) throws SQLException {
        Properties props = new Properties();
        props.setProperty("user", user);
        if (password != null) {
            props.setProperty("password", password);
        }
        props.setProperty("ApplicationName", applicationName);
        // pgjdbc takes whole seconds; 0 would mean "wait forever", so anything shorter rounds up to 1.
        props.setProperty("connectTimeout", Long.toString(seconds(connectTimeout)));
        props.setProperty("loginTimeout", Long.toString(seconds(connectTimeout)));
        props.setProperty("socketTimeout", Long.toString(seconds(socketTimeout)));
        props.setProperty("tcpKeepAlive", "true");
        return DriverManager.getConnection(jdbcUrl(), props);
    }

    private static long seconds(Duration d) {
        return Math.max(1, (d.toMillis() + 999) / 1000);
    }

    @Override
    public String toString() {
        return user + "@" + host + ":" + port + "/" + database;
    }
}
