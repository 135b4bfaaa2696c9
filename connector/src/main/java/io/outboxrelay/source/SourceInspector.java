package io.outboxrelay.source;

import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import io.outboxrelay.config.DatabaseSettings;
import io.outboxrelay.config.SqlIdentifiers;
import io.outboxrelay.database.ReopeningConnection;

/**
 * The facts about the source database that the relay asks for: its settings, the role's rights,
 * the outbox tables, the publication, the replication slot and who streams from it, the
 * dead-letter backlog. Every such query lives here; {@code check}, {@code status}, the gauges and
 * the slot guard each hold an inspector (one connection, opened on demand and dropped after a
 * failure) and ask it. The publication's own set-up is {@link OutboxPublication}'s.
 */
public final class SourceInspector implements AutoCloseable {

    private static final String SLOT_SQL = "SELECT s.active, s.active_pid, s.confirmed_flush_lsn::text, s.restart_lsn::text, "
            + "COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn), 0)::bigint, "
            + "COALESCE(pg_wal_lsn_diff(pg_current_wal_lsn(), s.restart_lsn), 0)::bigint, s.wal_status, "
            + "(SELECT r.application_name FROM pg_stat_replication r WHERE r.pid = s.active_pid), "
            + "(SELECT COALESCE(host(r.client_addr) || ':' || r.client_port, 'a local socket') FROM pg_stat_replication r WHERE r.pid = s.active_pid), "
            + "s.plugin, s.database "
            + "FROM pg_replication_slots s WHERE s.slot_name = ?";

    private final ReopeningConnection connection;

    public SourceInspector(DatabaseSettings database) {
        this(database, "outbox-relay monitor");
    }

    /** @param applicationName how the connection is named in {@code pg_stat_activity} */
    public SourceInspector(DatabaseSettings database, String applicationName) {
        this.connection = new ReopeningConnection(database, applicationName);
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
                Integer activePid = rs.wasNull() ? null : pid;
                return new SlotStatus(slotName, rs.getBoolean(1), activePid, rs.getString(3), rs.getString(4),
                        rs.getLong(5), rs.getLong(6), rs.getString(7), rs.getString(8), rs.getString(9), rs.getString(10), rs.getString(11));
            }
        }
        catch (SQLException e) {
            connection.reset();
            throw e;
        }
    }

    /** How many rows {@code table} has, counting at most {@code limit + 1}; 0 when it does not exist (reported where tables are checked). */
    public long rowsUpTo(String table, long limit) throws SQLException {
        try (PreparedStatement ps = connection.get().prepareStatement("SELECT CASE WHEN to_regclass(?) IS NULL THEN 0 ELSE "
                + "(SELECT count(*) FROM (SELECT 1 FROM " + SqlIdentifiers.quoteQualified(table) + " LIMIT " + (limit + 1) + ") AS r) END")) {
            ps.setString(1, table);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
        catch (SQLException e) {
            connection.reset();
            throw e;
        }
    }

    /** Terminates the walsender streaming from the slot, if one does; a role may end its own backends. */
    public void terminateSlotHolder(String slotName) throws SQLException {
        try (PreparedStatement ps = connection.get().prepareStatement(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = ? AND active")) {
            ps.setString(1, slotName);
            ps.executeQuery().close();
        }
        catch (SQLException e) {
            connection.reset();
            throw e;
        }
    }

    /** Whether {@code table} ({@code schema.table}) has a column named {@code column}. */
    public boolean hasColumn(String table, String column) throws SQLException {
        try (PreparedStatement ps = connection.get().prepareStatement(
                "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(?) AND attname = ? AND attnum > 0 AND NOT attisdropped")) {
            ps.setString(1, table);
            ps.setString(2, column);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next();
            }
        }
        catch (SQLException e) {
            connection.reset();
            throw e;
        }
    }

    /**
     * Up to {@code limit} distinct combinations of {@code columns} among the rows of {@code table}
     * (column name to JDBC value): the kinds of event an outbox holds, for showing their routing.
     */
    public List<Map<String, Object>> distinctValues(String table, List<String> columns, int limit) throws SQLException {
        String list = columns.stream().map(SqlIdentifiers::quote).collect(java.util.stream.Collectors.joining(", "));
        try (PreparedStatement ps = connection.get().prepareStatement("SELECT DISTINCT " + list + " FROM " + SqlIdentifiers.quoteQualified(table)
                + " LIMIT " + limit)) {
            List<Map<String, Object>> rows = new ArrayList<>();
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    Map<String, Object> row = new java.util.LinkedHashMap<>();
                    for (int i = 0; i < columns.size(); i++) {
                        row.put(columns.get(i), rs.getObject(i + 1));
                    }
                    rows.add(row);
                }
            }
            return rows;
        }
        catch (SQLException e) {
            connection.reset();
            throw e;
        }
    }

    /** The server's {@code wal_level}. */
    public String walLevel() throws SQLException {
        return single("SHOW wal_level");
    }

    /** Whether this very connection is TLS, and with which protocol and cipher (from {@code pg_stat_ssl}). */
    public TlsFacts tls() throws SQLException {
        try (PreparedStatement ps = connection.get().prepareStatement("SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
                ResultSet rs = ps.executeQuery()) {
            return rs.next() ? new TlsFacts(rs.getBoolean(1), rs.getString(2), rs.getString(3)) : new TlsFacts(false, null, null);
        }
        catch (SQLException e) {
            connection.reset();
            throw e;
        }
    }

    /** What {@code pg_stat_ssl} says of a connection. */
    public record TlsFacts(boolean ssl, String protocol, String cipher) {
    }

    /** Whether the connected role may replicate (REPLICATION, or a superuser). */
    public boolean canReplicate() throws SQLException {
        return "t".equals(single("SELECT (rolreplication OR rolsuper)::text::char FROM pg_roles WHERE rolname = current_user"));
    }

    /** Whether {@code table} exists and the connected role may read it. */
    public TableAccess table(String table) throws SQLException {
        try (PreparedStatement ps = connection.get().prepareStatement("SELECT to_regclass(?) IS NOT NULL, "
                + "CASE WHEN to_regclass(?) IS NULL THEN false ELSE has_table_privilege(to_regclass(?), 'SELECT') END")) {
            ps.setString(1, table);
            ps.setString(2, table);
            ps.setString(3, table);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return new TableAccess(rs.getBoolean(1), rs.getBoolean(2));
            }
        }
        catch (SQLException e) {
            connection.reset();
            throw e;
        }
    }

    /** The publication, or null when there is none. */
    public PublicationInfo publication(String name) throws SQLException {
        try (PreparedStatement ps = connection.get().prepareStatement("SELECT puballtables, "
                + "(SELECT string_agg(schemaname || '.' || tablename, ',' ORDER BY 1) FROM pg_publication_tables t WHERE t.pubname = p.pubname) "
                + "FROM pg_publication p WHERE pubname = ?")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return null;
                }
                String tables = rs.getString(2);
                return new PublicationInfo(name, rs.getBoolean(1), tables == null ? List.of() : List.of(tables.split(",")));
            }
        }
        catch (SQLException e) {
            connection.reset();
            throw e;
        }
    }

    /** What stands against {@code publication}'s column lists ({@code relay.publication.columns}); empty when nothing does. */
    public List<String> columnListProblems(OutboxPublication publication) throws SQLException {
        try {
            return publication.problems(connection.get());
        }
        catch (SQLException e) {
            connection.reset();
            throw e;
        }
    }

    /**
     * Which of {@code privileges} the connected role lacks on {@code table}, in the order given;
     * null when the table does not exist.
     */
    public List<String> missingPrivileges(String table, List<String> privileges) throws SQLException {
        try (PreparedStatement exists = connection.get().prepareStatement("SELECT to_regclass(?) IS NOT NULL")) {
            exists.setString(1, table);
            try (ResultSet rs = exists.executeQuery()) {
                rs.next();
                if (!rs.getBoolean(1)) {
                    return null;
                }
            }
            List<String> missing = new ArrayList<>();
            try (PreparedStatement ps = connection.get().prepareStatement("SELECT has_table_privilege(to_regclass(?), ?)")) {
                for (String privilege : privileges) {
                    ps.setString(1, table);
                    ps.setString(2, privilege);
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        if (!rs.getBoolean(1)) {
                            missing.add(privilege);
                        }
                    }
                }
            }
            return missing;
        }
        catch (SQLException e) {
            connection.reset();
            throw e;
        }
    }

    /** Whether the connected role may use {@code sequence} (what inserting into a bigserial column needs); true when there is no such sequence. */
    public boolean canUseSequence(String sequence) throws SQLException {
        return !"f".equals(single("SELECT CASE WHEN to_regclass('" + sequence.replace("'", "''") + "') IS NULL THEN 't' "
                + "ELSE has_sequence_privilege(to_regclass('" + sequence.replace("'", "''") + "'), 'USAGE')::text::char END"));
    }

    /** Whether the connected role may create tables in the schema {@code table} would be created in. */
    public boolean canCreateTable(String table) throws SQLException {
        String schema = table.contains(".") ? table.substring(0, table.indexOf('.')) : single("SELECT current_schema()");
        return schema != null && "t".equals(single("SELECT has_schema_privilege('" + schema.replace("'", "''") + "', 'CREATE')::text::char"));
    }

    /** Whether the connected role may create a publication for {@code tables}: it must own them (or be a superuser) and may create in the database. */
    public boolean canCreatePublication(List<String> tables) throws SQLException {
        if ("t".equals(single("SELECT rolsuper::text::char FROM pg_roles WHERE rolname = current_user"))) {
            return true;
        }
        if (!"t".equals(single("SELECT has_database_privilege(current_database(), 'CREATE')::text::char"))) {
            return false;
        }
        for (String table : tables) {
            if (!"t".equals(single("SELECT pg_has_role(current_user, c.relowner, 'USAGE')::text::char FROM pg_class c WHERE c.oid = to_regclass('"
                    + table.replace("'", "''") + "')"))) {
                return false;
            }
        }
        return true;
    }

    /** A table's existence and readability for the connected role. */
    public record TableAccess(boolean exists, boolean readable) {
    }

    /** A publication: for all tables, or for these ({@code schema.table}). */
    public record PublicationInfo(String name, boolean allTables, List<String> tables) {
    }

    private String single(String sql) throws SQLException {
        try (PreparedStatement ps = connection.get().prepareStatement(sql); ResultSet rs = ps.executeQuery()) {
            return rs.next() ? rs.getString(1) : null;
        }
        catch (SQLException e) {
            connection.reset();
            throw e;
        }
    }

    /** Dead letters of this relay not yet re-driven; 0 when the table does not exist yet. */
    /** A relay's parked dead letters: how many, and of how many aggregates (each held behind its first under keep-aggregate). */
    public record DeadLetterBacklog(long events, long aggregates, String oldestEventId, String oldestAggregate) {
        static final DeadLetterBacklog NONE = new DeadLetterBacklog(0, 0, null, null);
    }

    public DeadLetterBacklog parkedDeadLetters(String table, String relayName) throws SQLException {
        try (PreparedStatement exists = connection.get().prepareStatement("SELECT to_regclass(?) IS NOT NULL")) {
            exists.setString(1, table);
            try (ResultSet rs = exists.executeQuery()) {
                rs.next();
                if (!rs.getBoolean(1)) {
                    return DeadLetterBacklog.NONE;
                }
            }
            try (PreparedStatement ps = connection.get().prepareStatement(
                    "SELECT count(*), count(DISTINCT aggregate_id), (array_agg(event_id ORDER BY id) FILTER (WHERE aggregate_id IS NOT NULL))[1], "
                            + "(array_agg(aggregate_id ORDER BY id) FILTER (WHERE aggregate_id IS NOT NULL))[1] "
                            + "FROM " + table + " WHERE relay_name = ? AND redriven_at IS NULL")) {
                ps.setString(1, relayName);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    return new DeadLetterBacklog(rs.getLong(1), rs.getLong(2), rs.getString(3), rs.getString(4));
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
