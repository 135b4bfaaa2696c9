package io.outboxrelay.offsetstore;

import java.nio.ByteBuffer;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The SQL of the offset table, over one JDBC connection that is reopened when it breaks. One row
 * per (namespace, key), so engines sharing the table never touch each other's rows.
 *
 * Every statement commits on its own (autocommit): a flush is one statement that deletes, upserts
 * and, when fenced, checks the lease in the same breath. No transaction ever waits on this client
 * between statements, so a client cut off mid-flush (a partition, a frozen process) holds no row
 * lock past its statement — in particular not the lease row's, which a takeover must update. Not
 * thread-safe: the store calls it from its single writer thread.
 */
final class OffsetTable implements AutoCloseable {

    private final PostgresOffsetStoreConfig config;
    private final String write;
    private final String select;
    private final LeaseTable fence;
    private Connection connection;

    OffsetTable(PostgresOffsetStoreConfig config) {
        this.config = config;
        String table = config.table();
        this.fence = config.fencingTable() == null ? null : new LeaseTable(config.fencingTable());
        String changes = "del AS (DELETE FROM " + table + " WHERE %1$s namespace = ? AND offset_key = ANY(?)), "
                + "up AS (INSERT INTO " + table + " (namespace, offset_key, offset_value, updated_at) SELECT ?, k, v, now() FROM unnest(?::bytea[], ?::bytea[]) AS t(k, v) "
                + "WHERE %1$s true ON CONFLICT (namespace, offset_key) DO UPDATE SET offset_value = EXCLUDED.offset_value, updated_at = now()) ";
        this.write = fence == null
                ? "WITH " + String.format(changes, "") + "SELECT NULL::bigint"
                : "WITH " + fence.fenceCte() + ", " + String.format(changes, "EXISTS (SELECT 1 FROM fence WHERE epoch = ?) AND") + "SELECT (SELECT epoch FROM fence)";
        this.select = "SELECT offset_key, offset_value FROM " + table + " WHERE namespace = ?";
    }

    /** Creates the table unless it exists; a role without CREATE can use a table made for it. */
    void createIfMissing() throws SQLException {
        Connection c = connection();
        try (PreparedStatement exists = c.prepareStatement("SELECT to_regclass(?) IS NOT NULL")) {
            exists.setString(1, config.table());
            try (ResultSet rs = exists.executeQuery()) {
                rs.next();
                if (rs.getBoolean(1)) {
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
        }
        return rows;
    }

    /** Writes all entries in one statement; a null value deletes its key, as in Kafka Connect. Fenced: nothing is written unless the epoch leads. */
    void write(Map<ByteBuffer, ByteBuffer> entries) throws SQLException {
        List<byte[]> deleted = new ArrayList<>();
        List<byte[]> keys = new ArrayList<>();
        List<byte[]> values = new ArrayList<>();
        for (Map.Entry<ByteBuffer, ByteBuffer> e : entries.entrySet()) {
            if (e.getValue() == null) {
                deleted.add(bytes(e.getKey()));
            }
            else {
                keys.add(bytes(e.getKey()));
                values.add(bytes(e.getValue()));
            }
        }
        Connection c = connection();
        try (PreparedStatement ps = c.prepareStatement(write)) {
            // Parameters in the statement's order: [fence name, epoch,] namespace, deleted keys, namespace, keys, values[, epoch].
            int i = 1;
            if (fence != null) {
                ps.setString(i++, config.namespace());
                ps.setLong(i++, config.fencingEpoch());
            }
            ps.setString(i++, config.namespace());
            ps.setArray(i++, c.createArrayOf("bytea", deleted.toArray(byte[][]::new)));
            ps.setString(i++, config.namespace());
            ps.setArray(i++, c.createArrayOf("bytea", keys.toArray(byte[][]::new)));
            ps.setArray(i++, c.createArrayOf("bytea", values.toArray(byte[][]::new)));
            if (fence != null) {
                ps.setLong(i, config.fencingEpoch());
            }
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                long leading = rs.getLong(1);
                if (fence != null && (rs.wasNull() || leading != config.fencingEpoch())) {
                    throw fence.fenced(c, config.namespace(), config.fencingEpoch());
                }
            }
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
        }
        return connection;
    }

    static byte[] bytes(ByteBuffer buffer) {
        ByteBuffer copy = buffer.duplicate();
        byte[] out = new byte[copy.remaining()];
        copy.get(out);
        return out;
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
