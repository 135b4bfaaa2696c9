package io.outboxrelay.sink.stream;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.StreamSinkConfig;
import io.outboxrelay.offsetstore.PostgresOffsetBackingStore;
import io.outboxrelay.offsetstore.PostgresOffsetStoreConfig;

/**
 * Which relay numbers stream messages under a producer name on a stream. The broker keeps one
 * last publishing id per producer name and stream and drops every message at or below it: two
 * relays (two names, each with its own offsets and count) publishing under one producer name
 * would have the broker drop the lower ids of either as duplicates. The first relay to start
 * claims the pair in a table beside the offsets; another relay's start is refused, naming the
 * setting. The standbys of a relay share its name, and its claim.
 * <p>
 * Where the stream comes from each record's topic the claim is for every stream ({@code *}).
 */
public final class StreamProducerClaim {

    private static final Logger LOG = LoggerFactory.getLogger(StreamProducerClaim.class);

    public static final String TABLE = "outbox_relay_stream_producers";
    private static final String ANY_STREAM = "*";

    private StreamProducerClaim() {
    }

    /**
     * Claims {@code config}'s producer name on its stream for its relay; returns why the relay may
     * not start (the pair belongs to another relay), or null. Nothing is claimed when the sink is
     * not a stream or the offsets are not in PostgreSQL.
     */
    public static String claim(RelayConfig config, String applicationName) throws SQLException {
        StreamSinkConfig stream = config.stream();
        if (stream == null || !PostgresOffsetBackingStore.class.getName().equals(config.engineProperties().getProperty("offset.storage"))) {
            return null;
        }
        PostgresOffsetStoreConfig store = config.offsetStore();
        String table = tableBeside(store.table());
        String streamName = stream.stream() == null ? ANY_STREAM : stream.stream();
        try (Connection c = store.connect(applicationName, Duration.ofSeconds(30))) {
            c.setAutoCommit(true);
            try {
                createIfMissing(c, table);
            }
            catch (SQLException e) {
                if (!"42501".equals(e.getSQLState())) {
                    throw e;
                }
                LOG.warn("Cannot make {} ({}): no second relay under producer name '{}' is refused. Create it as deploy/sql/relay-role.sql does",
                        table, e.getMessage(), stream.producerName());
                return null;
            }
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO " + table + " (producer, stream, relay_name) VALUES (?, ?, ?) "
                    + "ON CONFLICT (producer, stream) DO NOTHING")) {
                ps.setString(1, stream.producerName());
                ps.setString(2, streamName);
                ps.setString(3, config.name());
                ps.executeUpdate();
            }
            return otherOwner(c, table, config);
        }
    }

    /**
     * What {@link #claim} would refuse, without claiming anything: for {@code check}. Null when
     * the name is free or this relay's, and when there is nothing to claim or no table yet.
     */
    public static String conflict(RelayConfig config, String applicationName) throws SQLException {
        if (config.stream() == null || !PostgresOffsetBackingStore.class.getName().equals(config.engineProperties().getProperty("offset.storage"))) {
            return null;
        }
        PostgresOffsetStoreConfig store = config.offsetStore();
        String table = tableBeside(store.table());
        try (Connection c = store.connect(applicationName, Duration.ofSeconds(30)); PreparedStatement exists = c.prepareStatement("SELECT to_regclass(?) IS NOT NULL")) {
            exists.setString(1, table);
            try (ResultSet rs = exists.executeQuery()) {
                rs.next();
                if (!rs.getBoolean(1)) {
                    return null;
                }
            }
            return otherOwner(c, table, config);
        }
    }

    /** The refusal when another relay claimed the producer name on the stream (or on every stream), or null. */
    private static String otherOwner(Connection c, String table, RelayConfig config) throws SQLException {
        StreamSinkConfig stream = config.stream();
        String streamName = stream.stream() == null ? ANY_STREAM : stream.stream();
        // A claim for every stream stands in the way of one for a single stream, and the other way round.
        try (PreparedStatement ps = c.prepareStatement("SELECT relay_name, stream FROM " + table
                + " WHERE producer = ? AND relay_name <> ? AND (stream = ? OR stream = ? OR ? = ?) ORDER BY claimed_at LIMIT 1")) {
            ps.setString(1, stream.producerName());
            ps.setString(2, config.name());
            ps.setString(3, streamName);
            ps.setString(4, ANY_STREAM);
            ps.setString(5, streamName);
            ps.setString(6, ANY_STREAM);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? refusal(stream.producerName(), rs.getString(2), rs.getString(1), config.name(), table) : null;
            }
        }
    }

    /**
     * Creates the claims table unless it exists: looked for first, since a role that may not create
     * tables (deploy/sql/relay-role.sql made them) is refused even {@code CREATE TABLE IF NOT EXISTS}.
     */
    public static void createIfMissing(Connection c, String table) throws SQLException {
        try (PreparedStatement exists = c.prepareStatement("SELECT to_regclass(?) IS NOT NULL")) {
            exists.setString(1, table);
            try (ResultSet rs = exists.executeQuery()) {
                rs.next();
                if (rs.getBoolean(1)) {
                    return;
                }
            }
        }
        try (Statement s = c.createStatement()) {
            s.execute("CREATE TABLE IF NOT EXISTS " + table + " (producer text NOT NULL, stream text NOT NULL, relay_name text NOT NULL, "
                    + "claimed_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (producer, stream))");
        }
    }

    /** The claims table, in the offset table's schema. */
    public static String tableBeside(String offsetTable) {
        int dot = offsetTable.indexOf('.');
        return dot < 0 ? TABLE : offsetTable.substring(0, dot + 1) + TABLE;
    }

    private static String refusal(String producer, String stream, String owner, String relay, String table) {
        return "stream producer '" + producer + "' " + (ANY_STREAM.equals(stream) ? "on every stream" : "on stream '" + stream + "'")
                + " is relay '" + owner + "''s, and this relay is '" + relay + "': under one producer name the broker drops the lower publishing ids "
                + "of either relay as duplicates. Give this relay a producer name of its own (" + StreamSinkConfig.PREFIX
                + "producer.name; without it the relay's name is used), or, if relay '" + owner + "' is retired, release the name: DELETE FROM "
                + table + " WHERE producer = '" + producer.replace("'", "''") + "'";
    }
}
