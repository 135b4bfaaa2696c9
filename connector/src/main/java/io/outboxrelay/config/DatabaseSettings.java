package io.outboxrelay.config;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.util.Properties;

/** The source database as the connector sees it; the offset store and dead-letter table default to it. */
public record DatabaseSettings(String host, int port, String user, String password, String database) {

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
        return DriverManager.getConnection(jdbcUrl(), props);
    }

    @Override
    public String toString() {
        return "DatabaseSettings[" + user + "@" + host + ":" + port + "/" + database + "]";
    }
}
