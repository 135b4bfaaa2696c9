package io.outboxrelay.source;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

import io.outboxrelay.config.SqlIdentifiers;

/**
 * The statements that make, move and drop the relay's logical replication slots (and the
 * publication named after each) on one connection to the source database: what {@code reshard}
 * does to hand a set of shards over to another.
 */
public final class ReplicationSlots {

    private final Connection source;

    public ReplicationSlots(Connection source) {
        this.source = source;
    }

    /** A slot's confirmed position and whether a walsender reads it now. */
    public record Position(String confirmed, boolean active, Integer pid) {
    }

    /** The slot of this database named {@code slot}, or null when there is none. */
    public Position position(String slot) throws SQLException {
        try (PreparedStatement ps = source.prepareStatement(
                "SELECT confirmed_flush_lsn::text, active, active_pid FROM pg_replication_slots WHERE slot_name = ? AND database = current_database()")) {
            ps.setString(1, slot);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? new Position(rs.getString(1), rs.getBoolean(2), (Integer) rs.getObject(3)) : null;
            }
        }
    }

    /** Makes a pgoutput slot; it keeps every change from the current WAL position on. */
    public void create(String slot) throws SQLException {
        try (PreparedStatement ps = source.prepareStatement("SELECT lsn FROM pg_create_logical_replication_slot(?, 'pgoutput')")) {
            ps.setString(1, slot);
            ps.execute();
        }
    }

    /** The server's current WAL write position. */
    public String currentWal() throws SQLException {
        try (PreparedStatement ps = source.prepareStatement("SELECT pg_current_wal_lsn()::text"); ResultSet rs = ps.executeQuery()) {
            rs.next();
            return rs.getString(1);
        }
    }

    /** The slots among {@code slots} whose confirmed position is still before {@code lsn}, each with its position. */
    public List<String> behind(List<String> slots, String lsn) throws SQLException {
        List<String> behind = new ArrayList<>();
        for (String slot : slots) {
            Position p = position(slot);
            if (p != null && (p.confirmed() == null || Lsns.after(Lsns.parse(lsn), Lsns.parse(p.confirmed())))) {
                behind.add(slot + (p.confirmed() == null ? "" : " at " + p.confirmed()));
            }
        }
        return behind;
    }

    /** Moves {@code slot} on to {@code lsn} without decoding what lies between. */
    public void advance(String slot, String lsn) throws SQLException {
        try (PreparedStatement ps = source.prepareStatement("SELECT pg_replication_slot_advance(?, ?::pg_lsn)")) {
            ps.setString(1, slot);
            ps.setString(2, lsn);
            ps.execute();
        }
    }

    /** Drops {@code slot} when it exists, and the publication of the same name. */
    public void drop(String slot) throws SQLException {
        if (position(slot) != null) {
            try (PreparedStatement ps = source.prepareStatement("SELECT pg_drop_replication_slot(?)")) {
                ps.setString(1, slot);
                ps.execute();
            }
        }
        try (PreparedStatement ps = source.prepareStatement("DROP PUBLICATION IF EXISTS " + SqlIdentifiers.quote(slot))) {
            ps.execute();
        }
    }
}
