package io.outboxrelay.offsetstore;

import java.nio.ByteBuffer;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.HashMap;
import java.util.Map;

/**
 * The SQL of the offset table, over one JDBC connection that is reopened when it breaks. One row
 * per (namespace, key); a flush is one transaction of upserts, so engines sharing the table never
 * touch each other's rows. Not thread-safe: the store calls it from its single writer thread.
 */
final class OffsetTable implements AutoCloseable {

    private final PostgresOffsetStoreConfig config;
    private final String upsert;
    private final String delete;
    private final String select;
    private final LeaseTable fence;
    private Connection connection;

    OffsetTable(PostgresOffsetStoreConfig config) {
        this.config = config;
        String table = config.table();
        this.upsert = "INSERT INTO " + table + " (namespace, offset_key, offset_value, updated_at) VALUES (?, ?, ?, now()) "
                + "ON CONFLICT (namespace, offset_key) DO UPDATE SET offset_value = EXCLUDED.offset_value, updated_at = now()";
        this.delete = "DELETE FROM " + table + " WHERE namespace = ? AND offset_key = ?";
        this.select = "SELECT offset_key, offset_value FROM " + table + " WHERE namespace = ?";
        this.fence = config.fencingTable() == null ? null : new LeaseTable(config.fencingTable());
    }

    /** Creates the table unless it exists; a role without CREATE can use a table made for it. */
    void createIfMissing() throws SQLException {
        Connection c = connection();
        try (PreparedStatement exists = c.prepareStatement("SELECT to_regclass(?) IS NOT NULL")) {
            exists.setString(1, config.table());
            try (ResultSet rs = exists.executeQuery()) {
                rs.next();
                if (rs.getBoolean(1)) {
                    c.commit();
                    return;
                }
            }
        }
        try (Statement s = c.createStatement()) {
            s.execute("CREATE TABLE IF NOT EXISTS " + config.table() + " ("
                    + "namespace text NOT NULL, "
                    + "offset_key bytea NOT NULL, "
                    + "offset_value bytea, "
                    + "updated_at timestamptz NOT NULL DEFAULT now(), "
                    + "PRIMARY KEY (namespace, offset_key))");
            c.commit();
        }
        catch (SQLException e) {
            rollbackQuietly();
            throw e;
        }
    }

    Map<ByteBuffer, ByteBuffer> load() throws SQLException {
        Map<ByteBuffer, ByteBuffer> rows = new HashMap<>();
        Connection c = connection();
        try (PreparedStatement ps = c.prepareStatement(select)) {
            ps.setString(1, config.namespace());
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    byte[] value = rs.getBytes(2);
                    rows.put(ByteBuffer.wrap(rs.getBytes(1)), value == null ? null : ByteBuffer.wrap(value));
                }
            }
            c.commit();
        }
        catch (SQLException e) {
            rollbackQuietly();
            throw e;
        }
        return rows;
    }

    /** Writes all entries in one transaction; a null value deletes its key, as in Kafka Connect. */
    void write(Map<ByteBuffer, ByteBuffer> entries) throws SQLException {
        Connection c = connection();
        try (PreparedStatement up = c.prepareStatement(upsert); PreparedStatement del = c.prepareStatement(delete)) {
            if (fence != null) {
                fence.checkFence(c, config.namespace(), config.fencingEpoch());
            }
            for (Map.Entry<ByteBuffer, ByteBuffer> e : entries.entrySet()) {
                if (e.getValue() == null) {
                    del.setString(1, config.namespace());
                    del.setBytes(2, bytes(e.getKey()));
                    del.addBatch();
                }
                else {
                    up.setString(1, config.namespace());
                    up.setBytes(2, bytes(e.getKey()));
                    up.setBytes(3, bytes(e.getValue()));
                    up.addBatch();
                }
            }
            up.executeBatch();
            del.executeBatch();
            c.commit();
        }
        catch (SQLException e) {
            rollbackQuietly();
            throw unwrapBatch(e);
        }
    }

    /** Drops the connection so the next call opens a fresh one (after a transient failure). */
    void reset() {
        closeQuietly();
        connection = null;
    }

    @Override
    public void close() {
        reset();
    }

    private Connection connection() throws SQLException {
        if (connection == null || connection.isClosed()) {
            connection = config.connect("outbox-relay offset store", config.socketTimeout());
            connection.setAutoCommit(false);
        }
        return connection;
    }

    static byte[] bytes(ByteBuffer buffer) {
        ByteBuffer copy = buffer.duplicate();
        byte[] out = new byte[copy.remaining()];
        copy.get(out);
        return out;
    }

    /** A failed batch says "call getNextException"; the next exception is the server's own error. */
    private static SQLException unwrapBatch(SQLException e) {
        return e.getNextException() != null ? e.getNextException() : e;
    }

    private void rollbackQuietly() {
        try {
            if (connection != null && !connection.isClosed()) {
                connection.rollback();
            }
        }
        catch (SQLException ignored) {
            // The connection is broken; reset() will replace it.
        }
    }

    private void closeQuietly() {
        try {
            if (connection != null) {
                connection.close();
            }
        }
        catch (SQLException ignored) {
            // Closing a broken connection can fail; there is nothing left to release.
        }
    }
}
