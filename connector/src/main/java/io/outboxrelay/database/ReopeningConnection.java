package io.outboxrelay.database;

import java.sql.Connection;
import java.sql.SQLException;

import io.outboxrelay.config.DatabaseSettings;

/**
 * One JDBC connection to the source database, opened on first use and opened again after
 * {@link #reset()} (which callers do after a failure: a broken connection is never reused). Not
 * thread-safe; each user has its own.
 */
public final class ReopeningConnection implements AutoCloseable {

    /** How a new connection is opened. */
    public interface Opener {
        Connection open() throws SQLException;
    }

    private final Opener opener;
    private Connection connection;

    public ReopeningConnection(DatabaseSettings database, String applicationName) {
        this(() -> database.connect(applicationName));
    }

    public ReopeningConnection(Opener opener) {
        this.opener = opener;
    }

    public Connection get() throws SQLException {
        if (connection == null || connection.isClosed()) {
            connection = opener.open();
        }
        return connection;
    }

    /** Drops the connection; the next {@link #get()} opens a new one. */
    public void reset() {
        try {
            if (connection != null) {
                connection.close();
            }
        }
        catch (SQLException ignored) {
            // A broken connection may fail to close; it is replaced either way.
        }
        connection = null;
    }

    @Override
    public void close() {
        reset();
    }
}
