package io.outboxrelay.offsetstore;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The SQL of leadership: one lease row per relay name with a fencing epoch, and one row per running
 * member (leader or standby) for status. It lives beside the offset table because every offset
 * write checks the epoch in its own transaction ({@link #checkFence}): a relay that lost its lease
 * cannot store an offset, whatever its clock says. Every statement is a transaction of its own and
 * no session state is used, so it holds behind PgBouncer in transaction mode (where advisory locks
 * do not); the expiry is judged by the server's clock only, so relays on hosts with skewed clocks
 * agree on it. Callers pass connections; they commit.
 */
public final class LeaseTable {

    public static final String DEFAULT_TABLE = "outbox_relay_leases";
    /** A custom SQLSTATE (class "OR", outbox-relay): an offset write refused because another relay now leads. */
    public static final String FENCED_STATE = "OR001";

    private final String table;
    private final String members;

    public LeaseTable(String table) {
        this.table = table;
        this.members = table + "_members";
    }

    public String table() {
        return table;
    }

    public String membersTable() {
        return members;
    }

    /** The current lease: who holds it, from when, with which epoch. */
    public record Lease(String name, long epoch, String holder, String host, long pid, Instant acquiredAt, Instant renewedAt, Instant expiresAt,
                        boolean expired) {
    }

    /** A running relay of this name, as it last reported itself. */
    public record Member(String member, String host, long pid, String role, Instant startedAt, Instant seenAt) {
    }

    public String ddl() {
        return "CREATE TABLE IF NOT EXISTS " + table + " (name text PRIMARY KEY, epoch bigint NOT NULL, holder text NOT NULL, host text NOT NULL, "
                + "pid bigint NOT NULL, acquired_at timestamptz NOT NULL, renewed_at timestamptz NOT NULL, expires_at timestamptz NOT NULL);\n"
                + "CREATE TABLE IF NOT EXISTS " + members + " (name text NOT NULL, member text NOT NULL, host text NOT NULL, pid bigint NOT NULL, "
                + "role text NOT NULL, started_at timestamptz NOT NULL, seen_at timestamptz NOT NULL, PRIMARY KEY (name, member))";
    }

    /** Creates both tables unless they exist; a role without CREATE can use tables made for it. */
    public void createIfMissing(Connection c) throws SQLException {
        try (PreparedStatement exists = c.prepareStatement("SELECT to_regclass(?) IS NOT NULL AND to_regclass(?) IS NOT NULL")) {
            exists.setString(1, table);
            exists.setString(2, members);
            try (ResultSet rs = exists.executeQuery()) {
                rs.next();
                if (rs.getBoolean(1)) {
                    return;
                }
            }
        }
        try (Statement s = c.createStatement()) {
            for (String statement : ddl().split(";\n")) {
                s.execute(statement);
            }
        }
    }

    /**
     * Takes the lease when it is free: never held, expired by the server's clock, already ours, or
     * abandoned — its holder has missed renewals ({@code silentFor}) and nothing streams from its
     * slot ({@code slotIdle}, asked of the source database by the caller), which is what a killed
     * leader leaves behind at once (its walsender ends with its connection). A taken lease gets the
     * next epoch. Returns the epoch, or empty when another holds it.
     */
    public Optional<Long> acquire(Connection c, String name, String holder, String host, long pid, Duration ttl, Duration silentFor, boolean slotIdle)
            throws SQLException {
        String sql = "INSERT INTO " + table + " AS l (name, epoch, holder, host, pid, acquired_at, renewed_at, expires_at) "
                + "VALUES (?, 1, ?, ?, ?, now(), now(), now() + ? * interval '1 millisecond') "
                + "ON CONFLICT (name) DO UPDATE SET epoch = l.epoch + 1, holder = EXCLUDED.holder, host = EXCLUDED.host, pid = EXCLUDED.pid, "
                + "acquired_at = now(), renewed_at = now(), expires_at = EXCLUDED.expires_at "
                + "WHERE l.expires_at < now() OR l.holder = EXCLUDED.holder OR (l.renewed_at < now() - ? * interval '1 millisecond' AND ?) "
                + "RETURNING epoch";
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setString(1, name);
            ps.setString(2, holder);
            ps.setString(3, host);
            ps.setLong(4, pid);
            ps.setLong(5, ttl.toMillis());
            ps.setLong(6, silentFor.toMillis());
            ps.setBoolean(7, slotIdle);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? Optional.of(rs.getLong(1)) : Optional.empty();
            }
        }
    }

    /** Extends the lease by {@code ttl} from the server's now, if it is still {@code holder}'s at {@code epoch}; false when it was taken over. */
    public boolean renew(Connection c, String name, String holder, long epoch, Duration ttl) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("UPDATE " + table + " SET renewed_at = now(), expires_at = now() + ? * interval '1 millisecond' "
                + "WHERE name = ? AND holder = ? AND epoch = ?")) {
            ps.setLong(1, ttl.toMillis());
            ps.setString(2, name);
            ps.setString(3, holder);
            ps.setLong(4, epoch);
            return ps.executeUpdate() == 1;
        }
    }

    /** Gives the lease up at once (a graceful stop), so that a standby takes it at its next look instead of waiting for the expiry. */
    public void release(Connection c, String name, String holder, long epoch) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("UPDATE " + table + " SET expires_at = '-infinity' WHERE name = ? AND holder = ? AND epoch = ?")) {
            ps.setString(1, name);
            ps.setString(2, holder);
            ps.setLong(3, epoch);
            ps.executeUpdate();
        }
    }

    public Optional<Lease> read(Connection c, String name) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT name, epoch, holder, host, pid, acquired_at, renewed_at, expires_at, expires_at < now() FROM "
                + table + " WHERE name = ?")) {
            ps.setString(1, name);
            try (ResultSet rs = ps.executeQuery()) {
                if (!rs.next()) {
                    return Optional.empty();
                }
                return Optional.of(new Lease(rs.getString(1), rs.getLong(2), rs.getString(3), rs.getString(4), rs.getLong(5),
                        rs.getTimestamp(6).toInstant(), rs.getTimestamp(7).toInstant(), instant(rs, 8), rs.getBoolean(9)));
            }
        }
    }

    /** Records that {@code member} runs, in {@code role} ("leader" or "standby"). */
    public void heartbeat(Connection c, String name, String member, String host, long pid, String role) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + members + " AS m (name, member, host, pid, role, started_at, seen_at) "
                + "VALUES (?, ?, ?, ?, ?, now(), now()) ON CONFLICT (name, member) DO UPDATE SET role = EXCLUDED.role, seen_at = now()")) {
            ps.setString(1, name);
            ps.setString(2, member);
            ps.setString(3, host);
            ps.setLong(4, pid);
            ps.setString(5, role);
            ps.executeUpdate();
        }
    }

    /** Forgets {@code member} (it stopped), and members not seen for {@code staleAfter}. */
    public void leave(Connection c, String name, String member, Duration staleAfter) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("DELETE FROM " + members + " WHERE name = ? AND (member = ? OR seen_at < now() - ? * interval '1 millisecond')")) {
            ps.setString(1, name);
            ps.setString(2, member);
            ps.setLong(3, staleAfter.toMillis());
            ps.executeUpdate();
        }
    }

    /** The members seen within {@code within}, oldest first. */
    public List<Member> members(Connection c, String name, Duration within) throws SQLException {
        List<Member> found = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT member, host, pid, role, started_at, seen_at FROM " + members
                + " WHERE name = ? AND seen_at >= now() - ? * interval '1 millisecond' ORDER BY started_at")) {
            ps.setString(1, name);
            ps.setLong(2, within.toMillis());
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    found.add(new Member(rs.getString(1), rs.getString(2), rs.getLong(3), rs.getString(4), rs.getTimestamp(5).toInstant(),
                            rs.getTimestamp(6).toInstant()));
                }
            }
        }
        return found;
    }

    /**
     * The fence, as a CTE named {@code fence} (one parameter: the name) for an offset write's single
     * statement: the lease row is read {@code FOR SHARE}, so a takeover (an UPDATE of that row)
     * waits for the write, and every write after the takeover sees the new epoch. The writer
     * compares {@code fence.epoch} with its own in the same statement, so nothing is written unless
     * it still leads.
     */
    public String fenceCte() {
        return "fence AS (SELECT epoch FROM " + table + " WHERE name = ? FOR SHARE)";
    }

    /** The error for a write the fence refused, saying who leads now ({@link #FENCED_STATE}). */
    public SQLException fenced(Connection c, String name, long epoch) throws SQLException {
        Optional<Lease> lease = read(c, name);
        if (lease.isEmpty()) {
            return new SQLException("fenced: no lease row for '" + name + "' in " + table + "; this relay (epoch " + epoch
                    + ") does not lead and may not store offsets", FENCED_STATE);
        }
        Lease l = lease.get();
        return new SQLException("fenced: relay '" + name + "' is led by epoch " + l.epoch() + " (" + l.host() + ", pid " + l.pid()
                + "); this relay held epoch " + epoch + " and may no longer store offsets", FENCED_STATE);
    }

    private static Instant instant(ResultSet rs, int column) throws SQLException {
        java.sql.Timestamp t = rs.getTimestamp(column);
        // '-infinity' (a released lease) comes back as the driver's smallest timestamp.
        return t == null ? Instant.EPOCH : t.toInstant();
    }
}
