package io.outboxrelay.offsetstore;

import java.io.IOException;
import java.sql.SQLException;
import java.sql.SQLTransientException;

/**
 * Tells a failure worth retrying (the connection or the server went away) from one that will fail
 * the same way every time (privileges, a bad table name, a value too large), and words the latter so
 * that an operator knows what to grant or fix. Debezium's JDBC store retries both kinds forever; this
 * distinction is why the store is written by hand.
 */
final class SqlFailure {

    private SqlFailure() {
    }

    static boolean isTransient(SQLException e) {
        String state = e.getSQLState();
        if (state == null) {
            return e instanceof SQLTransientException || e.getCause() instanceof IOException;
        }
        return state.startsWith("08")              // connection exception
                || state.startsWith("53")          // insufficient resources, e.g. too many connections
                || state.equals("57P01")           // admin shutdown
                || state.equals("57P02")           // crash shutdown
                || state.equals("57P03")           // cannot connect now (starting up)
                || state.equals("40001")           // serialization failure
                || state.equals("40P01")           // deadlock
                || state.equals("55P03");          // lock not available
    }

    /** One line saying what went wrong with which table and what to do about it. */
    static String describe(SQLException e, PostgresOffsetStoreConfig config, String action) {
        String state = e.getSQLState() == null ? "" : e.getSQLState();
        String what = "Cannot " + action + " offset table " + config.table() + " (" + config.url() + ", namespace '"
                + config.namespace() + "'): " + e.getMessage();
        String role = config.user() == null ? "<the relay's role>" : config.user();
        if (state.equals(LeaseTable.FENCED_STATE)) {
            return what + " — another relay took the lease over; this one steps down";
        }
        if (state.equals("42501") && config.fencingTable() != null && String.valueOf(e.getMessage()).contains(config.fencingTable())) {
            return what + " — every offset write checks the lease beside it: GRANT SELECT, INSERT, UPDATE, DELETE ON " + config.fencingTable() + ", "
                    + config.fencingTable() + "_members TO " + role + ";";
        }
        if (state.equals("42501")) {
            return what + " — grant the role what it needs: GRANT SELECT, INSERT, UPDATE, DELETE ON " + config.table() + " TO " + role
                    + "; (and CREATE on the schema if the table does not exist yet)";
        }
        if (state.equals("3F000") || state.equals("42P01")) {
            return what + " — check " + PostgresOffsetStoreConfig.TABLE + "; the schema must exist";
        }
        if (state.startsWith("42")) {
            return what + " — the table exists with another layout; point " + PostgresOffsetStoreConfig.TABLE
                    + " at a new table or create it as documented";
        }
        if (state.startsWith("28")) {
            return what + " — check " + PostgresOffsetStoreConfig.USER + " and " + PostgresOffsetStoreConfig.PASSWORD;
        }
        if (state.equals("3D000")) {
            return what + " — the database in " + PostgresOffsetStoreConfig.URL + " does not exist";
        }
        if (state.startsWith("22") || state.startsWith("54")) {
            return what + " — the offset value does not fit the table";
        }
        if (state.equals("25006")) {
            return what + " — the server is read-only (a standby?); point " + PostgresOffsetStoreConfig.URL + " at the primary";
        }
        return what;
    }
}
