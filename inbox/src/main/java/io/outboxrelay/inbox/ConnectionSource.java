package io.outboxrelay.inbox;

import java.sql.Connection;
import java.sql.SQLException;

/**
 * Where the inbox gets a connection for each message, closing it at the commit: a pool's
 * {@code DataSource::getConnection} (HikariCP's, a framework's). {@code DriverManager} works but opens
 * a PostgreSQL backend per message, several milliseconds each.
 */
@FunctionalInterface
public interface ConnectionSource {
    Connection connect() throws SQLException;
}
