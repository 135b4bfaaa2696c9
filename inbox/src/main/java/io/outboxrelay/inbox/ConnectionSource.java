package io.outboxrelay.inbox;

import java.sql.Connection;
import java.sql.SQLException;

/** Where the inbox gets a connection for each message: a {@code DataSource::getConnection}, a pool, {@code DriverManager}. */
@FunctionalInterface
public interface ConnectionSource {
    Connection connect() throws SQLException;
}
