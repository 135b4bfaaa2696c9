package io.outboxrelay.database;

import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.SocketTimeoutException;
import java.net.UnknownHostException;
import java.sql.SQLException;

import javax.net.ssl.SSLException;

/**
 * Says why a PostgreSQL connection could not be opened, and which setting to look at: pgjdbc's own
 * messages name the symptom (a file's mode, a refused handshake), not the relay's key that leads to
 * it, and the right fix differs by cause — a key file's permissions, the TLS settings, the
 * credentials, the network — so one wording for all of them sends people to the wrong one.
 */
public final class ConnectionFailure {

    private ConnectionFailure() {
    }

    /** The settings a connection is opened with, as the user writes them. */
    public record Keys(String login, String tls, String clientKey, String address) {
    }

    /** The offset store's connection, and the lease keeper's beside it: the source's settings unless its own are given. */
    public static final Keys OFFSET_STORE = new Keys(
            "debezium.source.offset.storage.postgres.user and password (by default debezium.source.database.user and password)",
            "debezium.source.database.sslmode, sslrootcert, sslcert, sslkey (or debezium.source.offset.storage.postgres.driver.ssl* for a store of its own)",
            "debezium.source.database.sslkey (or debezium.source.offset.storage.postgres.driver.sslkey)",
            "debezium.source.offset.storage.postgres.url (by default the source database's)");

    /** The cause of {@code e} in one phrase, with the settings to check. */
    public static String describe(SQLException e, Keys keys) {
        String message = String.valueOf(e.getMessage());
        String state = e.getSQLState() == null ? "" : e.getSQLState();
        if (message.contains("private key file")) {
            return "the TLS client key is refused: " + message + " (the file in " + keys.clientKey() + " must be readable by its owner only: chmod 600)";
        }
        if (state.startsWith("28")) {
            return "PostgreSQL refused the log-in: " + message + " (" + keys.login() + "; pg_hba.conf on the server)";
        }
        if (state.equals("3D000")) {
            return "no such database: " + message + " (" + keys.address() + ")";
        }
        if (has(e, SSLException.class) || message.contains("SSL") || message.contains("certificate")) {
            return "TLS to PostgreSQL failed: " + rootMessage(e) + " (" + keys.tls() + ")";
        }
        if (has(e, UnknownHostException.class) || has(e, ConnectException.class) || has(e, NoRouteToHostException.class)
                || has(e, SocketTimeoutException.class) || state.startsWith("08")) {
            return "PostgreSQL cannot be reached: " + rootMessage(e) + " (" + keys.address() + ", and the network between)";
        }
        return message;
    }

    private static boolean has(Throwable t, Class<? extends Throwable> type) {
        for (Throwable c = t; c != null; c = next(c)) {
            if (type.isInstance(c)) {
                return true;
            }
        }
        return false;
    }

    private static String rootMessage(Throwable t) {
        String chain = String.valueOf(t.getMessage());
        for (Throwable c = next(t); c != null; c = next(c)) {
            if (c.getMessage() != null && !chain.contains(c.getMessage())) {
                chain += ": " + c.getMessage();
            }
        }
        return chain;
    }

    private static Throwable next(Throwable t) {
        return t.getCause() == t ? null : t.getCause();
    }
}
