package io.outboxrelay.inbox;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.regex.Pattern;

/**
 * The processed-id table of one consumer name, and the rule both inboxes keep: the id row and the
 * handler's effect are written in one transaction, so both commit or neither does.
 *
 * Two deliveries of one id at once (a redelivery to a second consumer while the first is still in
 * its transaction) are serialised by the primary key: the second insert waits for the first
 * transaction and then finds the row.
 */
final class ProcessedIds {

    private static final Pattern TABLE = Pattern.compile("([A-Za-z_][A-Za-z0-9_$]{0,62}\\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}");

    final ConnectionSource connections;
    final String consumer;
    final String table;

    ProcessedIds(ConnectionSource connections, String consumer, String table) {
        this.connections = connections;
        this.consumer = consumer;
        this.table = table;
    }

    static String checkTable(String name) {
        if (name == null || !TABLE.matcher(name).matches()) {
            throw new IllegalArgumentException("table must be a plain table name, optionally schema-qualified: " + name);
        }
        return name;
    }

    /** The table's name without its schema, for the names of what belongs to it. */
    String bareName() {
        return table.substring(table.lastIndexOf('.') + 1);
    }

    String ddl() {
        return "CREATE TABLE IF NOT EXISTS " + table + " (consumer text NOT NULL, message_id text NOT NULL, "
                + "processed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (consumer, message_id));\n"
                + "CREATE INDEX IF NOT EXISTS " + bareName() + "_processed_at ON " + table + " (processed_at)";
    }

    void execute(String ddl) throws SQLException {
        try (Connection c = connections.connect(); Statement s = c.createStatement()) {
            for (String statement : ddl.split(";\n")) {
                s.execute(statement);
            }
        }
    }

    /**
     * Within the open transaction of {@code c}: records the id and runs the handler, or finds the id
     * recorded and runs nothing. Neither commits; the caller does, or rolls back on a throw.
     */
    Outcome handle(Connection c, InboxMessage message, InboxHandler handler) throws SQLException, HandlerFailure {
        int inserted;
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + table + " (consumer, message_id) VALUES (?, ?) ON CONFLICT DO NOTHING")) {
            ps.setString(1, consumer);
            ps.setString(2, message.messageId());
            inserted = ps.executeUpdate();
        }
        if (inserted == 0) {
            return Outcome.DUPLICATE;
        }
        try {
            handler.handle(c, message);
        }
        catch (Exception e) {
            throw new HandlerFailure(e);
        }
        return Outcome.PROCESSED;
    }

    /** See {@link Inbox#purgeOlderThan(Duration, int)}. */
    long purgeOlderThan(Duration age, int batch) throws SQLException {
        long total = 0;
        try (Connection c = connections.connect();
                PreparedStatement ps = c.prepareStatement("DELETE FROM " + table + " WHERE ctid IN (SELECT ctid FROM " + table
                        + " WHERE consumer = ? AND processed_at < now() - ? * interval '1 millisecond' LIMIT ?)")) {
            c.setAutoCommit(true);
            int deleted;
            do {
                ps.setString(1, consumer);
                ps.setLong(2, age.toMillis());
                ps.setInt(3, batch);
                deleted = ps.executeUpdate();
                total += deleted;
            } while (deleted == batch);
        }
        return total;
    }

    static void rollbackQuietly(Connection c) {
        try {
            c.rollback();
        }
        catch (SQLException ignored) {
            // The connection is likely gone; the transaction is rolled back with it.
        }
    }

    /** A handler's own failure, told apart from the inbox's SQL. */
    static final class HandlerFailure extends Exception {
        HandlerFailure(Exception cause) {
            super(cause);
        }
    }
}
