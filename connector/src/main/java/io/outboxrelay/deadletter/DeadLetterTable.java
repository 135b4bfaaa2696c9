package io.outboxrelay.deadletter;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.outboxrelay.config.DatabaseSettings;
import io.outboxrelay.database.ReopeningConnection;

/**
 * The dead-letter table in PostgreSQL: one row per parked event, with the reason and everything
 * needed to publish it again. Writing the same event for the same reason twice (after a restart
 * replays it) keeps one row.
 */
public final class DeadLetterTable implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(DeadLetterTable.class);
    /** A second attempt only on a fresh connection; longer retries are the caller's, with back-off and without holding anything. */
    private static final int ATTEMPTS = 2;
    /** The held lock's first key (see {@link #lockHeld}); the second is the table and relay's. */
    private static final String HELD_LOCK = "outbox-relay held";

    private final String table;
    private final String relayName;
    private final ReopeningConnection connection;

    public DeadLetterTable(DatabaseSettings database, String table, String relayName) {
        this.connection = new ReopeningConnection(database, "outbox-relay dead letters");
        this.table = table;
        this.relayName = relayName;
    }

    /** Creates the table unless it exists, and adds the columns later versions need to one made earlier when this role may. */
    public void createIfMissing() throws SQLException {
        if (!ensure(connection.get(), table)) {
            LOG.warn("{}", missingColumn(table));
        }
    }

    /** What to run when the table lacks the column a redrive into a stream needs and this role may not add it. */
    static String missingColumn(String table) {
        return "the dead-letter table " + table + " (relay.dead-letter.table) has no column redrive_publishing_id, which a redrive into a stream "
                + "needs, and this role may not add it: as the table's owner, run ALTER TABLE " + table + " ADD COLUMN redrive_publishing_id bigint";
    }

    /**
     * The same on {@code c}, for a caller with a connection of its own ({@link DeadLetterRedriver});
     * returns whether the table has {@code redrive_publishing_id} (an earlier one lacks it unless
     * this role, its owner, could add it).
     */
    static boolean ensure(Connection c, String table) throws SQLException {
        try (PreparedStatement exists = c.prepareStatement("SELECT to_regclass(?) IS NOT NULL, "
                + "EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(?) AND attname = 'redrive_publishing_id' AND NOT attisdropped)")) {
            exists.setString(1, table);
            exists.setString(2, table);
            try (ResultSet rs = exists.executeQuery()) {
                rs.next();
                if (rs.getBoolean(1)) {
                    boolean hasColumn = rs.getBoolean(2) || addedColumn(c, table);
                    indexParkedByAggregate(c, table);
                    return hasColumn;
                }
            }
        }
        create(c, table);
        indexParkedByAggregate(c, table);
        return true;
    }

    /** The index that finds an aggregate's parked events (relay.dead-letter.order=keep-aggregate asks for every batch while any are parked). */
    static String parkedIndex(String table) {
        int dot = table.lastIndexOf('.');
        String schema = dot < 0 ? "" : table.substring(0, dot + 1);
        return schema + table.substring(dot + 1) + "_parked_by_aggregate";
    }

    private static void indexParkedByAggregate(Connection c, String table) throws SQLException {
        String index = parkedIndex(table);
        try (PreparedStatement exists = c.prepareStatement("SELECT to_regclass(?) IS NOT NULL")) {
            exists.setString(1, index);
            try (ResultSet rs = exists.executeQuery()) {
                rs.next();
                if (rs.getBoolean(1)) {
                    return;
                }
            }
        }
        boolean autoCommit = c.getAutoCommit();
        try (Statement s = c.createStatement()) {
            s.execute("CREATE INDEX IF NOT EXISTS " + index.substring(index.lastIndexOf('.') + 1) + " ON " + table
                    + " (relay_name, aggregate_id, id) WHERE redriven_at IS NULL");
        }
        catch (SQLException e) {
            if (!"42501".equals(e.getSQLState())) {
                throw e;
            }
            if (!autoCommit) {
                c.rollback();
            }
            // Not the table's owner: the lookups still work, by scanning the table's parked rows.
            LOG.warn("the dead-letter table {} (relay.dead-letter.table) has no index {} and this role may not add it: as the table's owner, run "
                    + "CREATE INDEX {} ON {} (relay_name, aggregate_id, id) WHERE redriven_at IS NULL", table, index,
                    index.substring(index.lastIndexOf('.') + 1), table);
        }
    }

    private static boolean addedColumn(Connection c, String table) throws SQLException {
        boolean autoCommit = c.getAutoCommit();
        try (Statement s = c.createStatement()) {
            s.execute("ALTER TABLE " + table + " ADD COLUMN IF NOT EXISTS redrive_publishing_id bigint");
            return true;
        }
        catch (SQLException e) {
            if ("42501".equals(e.getSQLState())) {
                // Not the table's owner (a least-privilege role, the table made by deploy/sql/relay-role.sql): the caller says what to run.
                if (!autoCommit) {
                    c.rollback();
                }
                return false;
            }
            throw e;
        }
    }

    private static void create(Connection c, String table) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("CREATE TABLE IF NOT EXISTS " + table + " ("
                    + "id bigserial PRIMARY KEY, "
                    + "relay_name text NOT NULL, "
                    + "event_id text, "
                    + "reason text NOT NULL, "
                    + "exchange text, "
                    + "routing_key text, "
                    + "payload bytea, "
                    + "headers jsonb, "
                    + "source_topic text, "
                    + "aggregate_id text, "
                    + "created_at timestamptz NOT NULL DEFAULT now(), "
                    + "redriven_at timestamptz, "
                    // Given by a re-drive into a stream before it publishes the row, and kept: see DeadLetterRedriver.
                    + "redrive_publishing_id bigint, "
                    + "UNIQUE (relay_name, event_id, reason))");
        }
    }

    /** Writes one dead letter, once more on a new connection after a connection failure; a failure after that is thrown. */
    public void write(DeadLetter letter) throws SQLException {
        withRetry(c -> {
            insert(c, letter);
            return true;
        });
    }

    /**
     * Writes the dead letter of an event held behind an earlier one of its aggregate, but only while
     * that aggregate still has an event parked; returns false, writing nothing, once it has none (a
     * redrive released it meanwhile), and the event is to be published instead. Holding the held
     * lock shared while it looks and writes is what lets a redrive, which takes it exclusively for
     * its last look, never finish while a row it would have had to publish is being written.
     */
    public boolean writeHeld(DeadLetter letter) throws SQLException {
        return withRetry(c -> {
            c.setAutoCommit(false);
            try {
                lockHeld(c, table, relayName, false);
                boolean held;
                try (PreparedStatement ps = c.prepareStatement("SELECT EXISTS (SELECT 1 FROM " + table
                        + " WHERE relay_name = ? AND aggregate_id = ? AND redriven_at IS NULL)")) {
                    ps.setString(1, relayName);
                    ps.setString(2, letter.aggregateId());
                    try (ResultSet rs = ps.executeQuery()) {
                        rs.next();
                        held = rs.getBoolean(1);
                    }
                }
                if (held) {
                    insert(c, letter);
                }
                c.commit();
                return held;
            }
            finally {
                c.setAutoCommit(true);
            }
        });
    }

    /** How the reason of an event parked behind an earlier one of its aggregate begins: a redrive always takes such a row along. */
    public static final String HELD_PREFIX = "held behind parked event ";

    /** The dead-letter reason of an event held behind {@code blockingEventId} (relay.dead-letter.order=keep-aggregate). */
    public static String heldReason(String blockingEventId, String aggregate) {
        return HELD_PREFIX + blockingEventId + " of aggregate " + aggregate + " (relay.dead-letter.order=keep-aggregate)";
    }

    /** What the dead-letter table holds of a batch, for relay.dead-letter.order=keep-aggregate. */
    public record Held(Map<String, String> firstParkedByAggregate, Set<String> parkedEvents) {
        public static final Held NONE = new Held(Map.of(), Set.of());
    }

    /**
     * Of {@code aggregates}, those with an event parked and not re-driven, each with the first such
     * event's id; of {@code events}, those parked and not re-driven themselves.
     */
    public Held held(Collection<String> aggregates, Collection<String> events) throws SQLException {
        return withRetry(c -> {
            Map<String, String> first = new HashMap<>();
            try (PreparedStatement ps = c.prepareStatement("SELECT DISTINCT ON (aggregate_id) aggregate_id, event_id FROM " + table
                    + " WHERE relay_name = ? AND redriven_at IS NULL AND aggregate_id = ANY (?) ORDER BY aggregate_id, id")) {
                ps.setString(1, relayName);
                ps.setArray(2, c.createArrayOf("text", aggregates.toArray()));
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        first.put(rs.getString(1), rs.getString(2));
                    }
                }
            }
            Set<String> parked = new HashSet<>();
            if (!first.isEmpty()) {
                try (PreparedStatement ps = c.prepareStatement("SELECT event_id FROM " + table
                        + " WHERE relay_name = ? AND redriven_at IS NULL AND event_id = ANY (?)")) {
                    ps.setString(1, relayName);
                    ps.setArray(2, c.createArrayOf("text", events.toArray()));
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            parked.add(rs.getString(1));
                        }
                    }
                }
            }
            return new Held(first, parked);
        });
    }

    /** How many aggregates this relay has events of parked and not re-driven. */
    public long heldAggregates() throws SQLException {
        return withRetry(c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT count(DISTINCT aggregate_id) FROM " + table
                    + " WHERE relay_name = ? AND redriven_at IS NULL")) {
                ps.setString(1, relayName);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    return rs.getLong(1);
                }
            }
        });
    }

    /** Whether this relay has any event parked and not re-driven that has an aggregate id. */
    public boolean anyHeld() throws SQLException {
        return withRetry(c -> {
            try (PreparedStatement ps = c.prepareStatement("SELECT EXISTS (SELECT 1 FROM " + table
                    + " WHERE relay_name = ? AND redriven_at IS NULL AND aggregate_id IS NOT NULL)")) {
                ps.setString(1, relayName);
                try (ResultSet rs = ps.executeQuery()) {
                    rs.next();
                    return rs.getBoolean(1);
                }
            }
        });
    }

    /**
     * The lock between the relay writing a held event and a redrive's last look for what to publish
     * (a transaction-level advisory lock: released at commit, and by a connection that dies).
     */
    static void lockHeld(Connection c, String table, String relayName, boolean exclusive) throws SQLException {
        try (PreparedStatement ps = c.prepareStatement("SELECT " + (exclusive ? "pg_advisory_xact_lock" : "pg_advisory_xact_lock_shared")
                + "(hashtext(?), hashtext(?))")) {
            ps.setString(1, HELD_LOCK);
            ps.setString(2, table + " " + relayName);
            ps.execute();
        }
    }

    private interface Work<T> {
        T on(Connection c) throws SQLException;
    }

    private <T> T withRetry(Work<T> work) throws SQLException {
        for (int attempt = 1;; attempt++) {
            try {
                return work.on(connection.get());
            }
            catch (SQLException e) {
                boolean transientFailure = e.getSQLState() != null && (e.getSQLState().startsWith("08") || e.getSQLState().startsWith("57P"));
                connection.reset();
                if (!transientFailure || attempt >= ATTEMPTS) {
                    throw new SQLException("Cannot use dead-letter table " + table + " (relay.dead-letter.table): " + e.getMessage(), e.getSQLState(), e);
                }
                LOG.warn("Using dead-letter table {} failed ({}); trying once more on a new connection", table, e.getMessage());
            }
        }
    }

    private void insert(Connection c, DeadLetter letter) throws SQLException {
        String sql = "INSERT INTO " + table + " (relay_name, event_id, reason, exchange, routing_key, payload, headers, source_topic, aggregate_id) "
                + "VALUES (?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?) ON CONFLICT (relay_name, event_id, reason) DO NOTHING";
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setString(1, relayName);
            ps.setString(2, letter.eventId());
            ps.setString(3, letter.reason());
            ps.setString(4, letter.exchange());
            ps.setString(5, letter.routingKey());
            ps.setBytes(6, letter.payload());
            ps.setString(7, letter.headersJson());
            ps.setString(8, letter.sourceTopic());
            ps.setString(9, letter.aggregateId());
            ps.executeUpdate();
        }
    }

    public String table() {
        return table;
    }

    @Override
    public void close() {
        connection.reset();
    }
}
