package io.outboxrelay.deadletter;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;

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
                    return rs.getBoolean(2) || addedColumn(c, table);
                }
            }
        }
        create(c, table);
        return true;
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
        String sql = "INSERT INTO " + table + " (relay_name, event_id, reason, exchange, routing_key, payload, headers, source_topic, aggregate_id) "
                + "VALUES (?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?) ON CONFLICT (relay_name, event_id, reason) DO NOTHING";
        for (int attempt = 1;; attempt++) {
            try (PreparedStatement ps = connection.get().prepareStatement(sql)) {
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
                return;
            }
            catch (SQLException e) {
                boolean transientFailure = e.getSQLState() != null && (e.getSQLState().startsWith("08") || e.getSQLState().startsWith("57P"));
                connection.reset();
                if (!transientFailure || attempt >= ATTEMPTS) {
                    throw new SQLException("Cannot write dead-letter table " + table + " (relay.dead-letter.table): " + e.getMessage(), e.getSQLState(), e);
                }
                LOG.warn("Writing dead-letter table {} failed ({}); trying once more on a new connection", table, e.getMessage());
            }
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
