package io.outboxrelay.source;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.RelaySettings;
import io.outboxrelay.offsetstore.PostgresOffsetBackingStore;
import io.outboxrelay.offsetstore.PostgresOffsetStoreConfig;

/**
 * The sets of shards a relay name has run as, found by the offsets they stored: {@code name} for
 * the unsharded relay, {@code name-<index>of<count>} for each shard. A set of another size that has
 * stored offsets is still in use (or was not retired by {@code outbox-relay reshard --finish}):
 * starting beside it would publish every aggregate twice, through both splits.
 */
public final class ShardSets {

    private static final Pattern SHARD = Pattern.compile("-(\\d+)of(\\d+)$");

    private ShardSets() {
    }

    /** The shard count a namespace was made for, or -1 when it is not one of {@code baseName}'s. */
    public static int countOf(String namespace, String baseName) {
        if (namespace.equals(baseName)) {
            return 1;
        }
        if (!namespace.startsWith(baseName + "-")) {
            return -1;
        }
        Matcher m = SHARD.matcher(namespace.substring(baseName.length()));
        return m.matches() ? Integer.parseInt(m.group(2)) : -1;
    }

    /** Every namespace of {@code baseName} with stored offsets, in order. */
    public static List<String> namespaces(Connection offsetStore, String table, String baseName) throws SQLException {
        List<String> found = new ArrayList<>();
        try (PreparedStatement ps = offsetStore.prepareStatement("SELECT DISTINCT namespace FROM " + table + " WHERE namespace = ? OR left(namespace, ?) = ?")) {
            ps.setString(1, baseName);
            ps.setInt(2, baseName.length() + 1);
            ps.setString(3, baseName + "-");
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    if (countOf(rs.getString(1), baseName) > 0) {
                        found.add(rs.getString(1));
                    }
                }
            }
        }
        catch (SQLException e) {
            if ("42P01".equals(e.getSQLState())) {
                return List.of(); // no offsets stored yet by anyone
            }
            throw e;
        }
        return List.copyOf(new TreeSet<>(found));
    }

    /** The namespaces of {@code baseName} made for a count other than {@code count}: what stands in a shard set's way. */
    public static List<String> foreign(Connection offsetStore, String table, String baseName, int count) throws SQLException {
        return namespaces(offsetStore, table, baseName).stream().filter(n -> countOf(n, baseName) != count).toList();
    }

    /** Deletes the stored offsets of {@code namespaces}: a shard set handed over ({@code reshard --finish}) starts nowhere again. */
    public static void forget(Connection offsetStore, String table, List<String> namespaces) throws SQLException {
        try (PreparedStatement ps = offsetStore.prepareStatement("DELETE FROM " + table + " WHERE namespace = ANY (?)")) {
            ps.setArray(1, offsetStore.createArrayOf("text", namespaces.toArray()));
            ps.execute();
        }
    }

    /**
     * Why {@code config}'s relay may not run beside the sets its name has already run as, or null
     * (also when the offsets are not in PostgreSQL, where no other set can be seen).
     */
    public static String conflict(RelayConfig config, String applicationName) throws SQLException {
        if (!PostgresOffsetBackingStore.class.getName().equals(config.engineProperties().getProperty("offset.storage"))) {
            return null;
        }
        RelaySettings.Shard shard = config.relay().shard();
        PostgresOffsetStoreConfig store = config.offsetStore();
        try (Connection c = store.connect(applicationName, Duration.ofSeconds(30))) {
            List<String> others = foreign(c, store.table(), shard.baseName(), shard.count());
            return others.isEmpty() ? null : refusal(shard.baseName(), shard.count(), others);
        }
    }

    /** The line that refuses a start beside {@code foreign}. */
    public static String refusal(String baseName, int count, List<String> foreign) {
        int theirs = countOf(foreign.get(0), baseName);
        return "relay '" + baseName + "' has stored offsets of " + (theirs == 1 ? "an unsharded relay" : theirs + " shards") + " (" + String.join(", ", foreign)
                + "), and this relay runs with relay.shard.count=" + count + ": the two splits would publish every event twice. Change the number of "
                + "shards with `outbox-relay reshard --to " + count + "` and, once the old relays are stopped, `outbox-relay reshard --to " + count
                + " --finish` (docs/shards-and-streams.md: Changing the number of shards)";
    }
}
