package io.outboxrelay.monitor;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;

import io.outboxrelay.config.DatabaseSettings;
import io.outboxrelay.database.ReopeningConnection;

/**
 * Read-only queries about the relay's footprint in the source database: its replication slot and
 * its dead-letter table. One connection, opened on demand and dropped after a failure; the
 * {@code status} command and the metrics poller each have their own.
 */
public final class SourceInspector implements AutoCloseable {

    private static final String SLOT_SQL = "SELECT s.active, s.active_pid, s.confirmed_flush_lsn::text, s.restart_lsn::text, "
            + "COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn), 0)::bigint, "
            + "COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn), 0)::bigint, s.wal_status, "
            + "(SELECT r.application_name || '@' || COALESCE(host(r.client_addr), 'local') FROM pg_stat_replication r WHERE r.pid = s.active_pid) "
            + "FROM pg_replication_slots s WHERE s.slot_name = ?";

    private final ReopeningConnection connection;

    public SourceInspector(DatabaseSettings database) {
        this.connection = new ReopeningConnection(database, "outbox-relay monitor");
    }

    /** The slot, or null when it does not exist (the relay has not run yet, or it was dropped). */
    public SlotStatus slot(String slotName) throws SQLException {
        try (PreparedStatement ps = connection.get().prepareStatement(SLOT_SQL)) {
            ps.setString(1, slotName);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return null;
                }
                int pid = rs.getInt(2);
                return new SlotStatus(slotName, rs.getBoolean(1), rs.wasNull() ? null : pid, rs.getString(3), rs.getString(4),
                        rs.getLong(5), rs.getLong(6), rs.getString(7), rs.getString(8));
            }
        }
        catch (SQLException e) {
            connection.reset();
            throw e;
        }
    }

    /** Dead letters of this relay not yet re-driven; 0 when the table does not exist yet. */
    public long parkedDeadLetters(String table, String relayName) throws SQLException {
        try (PreparedStatement exists = connection.get().prepareStatement("SELECT to_regclass(?) IS NOT NULL")) {
            exists.setString(1, table);
            try (ResultSet rs = exists.executeQuery()) {
                rs.next();
                if (!rs.getBoolean(1)) {
                    return 0;
                }
            }
            try (PreparedStatement ps = connection.get().prepareStatement(
                    "SELECT count(*) FROM " + table + " WHERE relay_name = ? AND redriven_at IS NULL")) {
                ps.setString(1, relayName);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    return rs.getLong(1);
                }
            }
        }
        catch (SQLException e) {
            connection.reset();
            throw e;
        }
    }

    @Override
    public void close() {
        connection.reset();
    }
}
