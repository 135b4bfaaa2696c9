package io.outboxrelay.source;

import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import static io.outboxrelay.config.SqlIdentifiers.quote;
import static io.outboxrelay.config.SqlIdentifiers.quoteQualified;

import io.outboxrelay.config.ShardFilter;
import io.outboxrelay.config.SqlIdentifiers;
import io.outboxrelay.config.DatabaseSettings;
import io.outboxrelay.config.RelayConfig;

/**
 * Gives the relay's publication the column lists {@code relay.publication.columns} asks for
 * (PostgreSQL 15+), or takes them away when it asks for none, before the engine starts.
 *
 * <p>Why by hand: Debezium's {@code filtered} mode creates {@code FOR TABLE t} without a column
 * list, and alters the publication only when its set of tables differs, so it keeps whatever
 * column lists it finds. A column nobody routes (a {@code created_at} timestamp, say) then costs
 * PostgreSQL, the network and above all Debezium's single decoding thread on every row: it parses
 * and re-formats each timestamp.
 *
 * <p>Only ever touches a publication the relay manages ({@code publication.autocreate.mode=filtered}),
 * and only one that publishes inserts alone: with updates or deletes published, PostgreSQL refuses
 * an {@code UPDATE}/{@code DELETE} on the table whose replica identity the column list leaves out,
 * which would break the application's own writes. The configuration loader enforces both.
 */
public final class OutboxPublication {

    private static final Logger LOG = LoggerFactory.getLogger(OutboxPublication.class);
    static final String SETTING = "relay.publication.columns";

    private final DatabaseSettings database;
    private final String publication;
    private final List<String> tables;
    private final List<String> columns;
    /** The shard's row filter; null for an unsharded relay. */
    private final ShardFilter filter;
    /** Whether {@code columns} was derived from the router's configuration rather than given by the user. */
    private final boolean derived;

    public OutboxPublication(DatabaseSettings database, String publication, List<String> tables, List<String> columns) {
        this(database, publication, tables, new RelayConfig.PublicationColumns(columns, false), null);
    }

    /**
     * @param tables the outbox tables ({@code schema.table}), as {@code table.include.list} names them
     * @param columns the columns to publish of each; empty publishes all of them
     * @param filter the shard's row filter, or null
     */
    public OutboxPublication(DatabaseSettings database, String publication, List<String> tables, RelayConfig.PublicationColumns columns,
                             ShardFilter filter) {
        this.database = database;
        this.publication = publication;
        this.tables = tables;
        this.columns = columns.names();
        this.derived = columns.derived();
        this.filter = filter;
    }

    /** One published table's column list (null: all) and row filter as PostgreSQL prints it (null: none). */
    private record Published(List<String> columns, String rowFilter) {
    }

    /**
     * What stands in the way of {@link #prepare()}, one line per problem naming the setting, without
     * changing anything: for {@code outbox-relay check}.
     */
    public List<String> problems(Connection c) throws SQLException {
        if (columns.isEmpty() && filter == null) {
            return List.of();
        }
        try {
            requireColumnLists(c);
        }
        catch (SQLException e) {
            return List.of(e.getMessage());
        }
        List<String> problems = new ArrayList<>();
        for (String table : columns.isEmpty() ? List.<String>of() : tables) {
            try {
                columnsToPublish(c, table);
            }
            catch (SQLException e) {
                problems.add(e.getMessage());
            }
        }
        return problems;
    }

    /** Creates or alters the publication so that it sends the configured columns; a no-op where nothing is to change. */
    public void prepare() throws SQLException {
        try (Connection c = database.connect("outbox-relay publication")) {
            requireColumnLists(c);
            if (c.getMetaData().getDatabaseMajorVersion() < 15) {
                return; // no column list can be there to take away
            }
            Map<String, Published> published = currentPublication(c);
            Map<String, List<String>> current = published == null ? null : new LinkedHashMap<>();
            if (published != null) {
                published.forEach((table, p) -> current.put(table, p.columns()));
                refuseForeignFilters(published);
            }
            if (filter != null) {
                prepareShard(c, published);
                return;
            }
            if (columns.isEmpty()) {
                if (current != null && current.values().stream().anyMatch(list -> list != null)) {
                    // An earlier run published fewer columns; Debezium would keep those lists, so they go here.
                    Map<String, List<String>> all = new LinkedHashMap<>();
                    current.keySet().forEach(table -> all.put(table, null));
                    execute(c, "ALTER PUBLICATION " + quote(publication) + " SET TABLE " + tableList(all));
                    LOG.info("Publication {} publishes every column again ({} is not set)", publication, SETTING);
                }
                return;
            }
            Map<String, List<String>> wanted = new LinkedHashMap<>();
            for (String table : tables) {
                wanted.put(table, columnsToPublish(c, table));
            }
            if (current == null) {
                execute(c, "CREATE PUBLICATION " + quote(publication) + " FOR TABLE " + tableList(wanted) + " WITH (publish = 'insert')");
                LOG.info("Created publication {} publishing only {} of {}", publication, columns, tables);
            }
            else if (!current.equals(wanted)) {
                // Inserts alone first: a column list on a publication that also sends deletes would make PostgreSQL
                // refuse the application's DELETEs on a table whose replica identity the list leaves out.
                c.setAutoCommit(false);
                execute(c, "ALTER PUBLICATION " + quote(publication) + " SET (publish = 'insert')");
                execute(c, "ALTER PUBLICATION " + quote(publication) + " SET TABLE " + tableList(wanted));
                c.commit();
                LOG.info("Publication {} now publishes only {} of {}", publication, columns, tables);
            }
        }
    }

    /**
     * A shard's publication: created with its row filter (and column lists), or given them when it
     * lacks them. A filter for another count, index or key column is refused, never replaced: the
     * slot behind it holds WAL decoded for that split, and changing the split under a running set of
     * shards would move aggregates between shards mid-stream.
     */
    private void prepareShard(Connection c, Map<String, Published> published) throws SQLException {
        Map<String, List<String>> wanted = new LinkedHashMap<>();
        for (String table : tables) {
            wanted.put(table, columns.isEmpty() ? null : columnsToPublish(c, table));
        }
        if (published != null) {
            boolean same = published.keySet().equals(wanted.keySet());
            for (Map.Entry<String, Published> e : published.entrySet()) {
                ShardFilter found = ShardFilter.parse(e.getValue().rowFilter());
                if (found != null && !found.equals(filter)) {
                    throw new SQLException("publication " + publication + " filters " + e.getKey() + " for shard " + found.index() + " of " + found.count()
                            + " by " + found.keyColumn() + " (" + e.getValue().rowFilter() + "), not shard " + filter.index() + " of " + filter.count()
                            + " by " + filter.keyColumn() + " (relay.shard.*, the router's table.field.event.key): a set of shards is changed with "
                            + "`outbox-relay reshard`, never in place");
                }
                if (found != null && !ShardFilter.placesNulls(e.getValue().rowFilter())) {
                    LOG.warn("Publication {} placed rows of {} whose {} is NULL on no shard (hashtext(NULL) is NULL), so no shard sent them; its filter"
                            + " now hashes a NULL aggregate id as the empty one. Rows written before this were not sent: find them with"
                            + " SELECT id FROM {} WHERE {} IS NULL", publication, e.getKey(), filter.keyColumn(), e.getKey(), quote(filter.keyColumn()));
                    same = false;
                }
                same &= found != null && java.util.Objects.equals(e.getValue().columns(), wanted.get(e.getKey()));
            }
            if (same) {
                return;
            }
        }
        String tableList = wanted.entrySet().stream()
                .map(e -> quoteQualified(e.getKey()) + (e.getValue() == null ? "" : " (" + e.getValue().stream().map(SqlIdentifiers::quote)
                        .collect(Collectors.joining(", ")) + ")") + " WHERE (" + filter.expression() + ")")
                .collect(Collectors.joining(", "));
        if (published == null) {
            execute(c, "CREATE PUBLICATION " + quote(publication) + " FOR TABLE " + tableList + " WITH (publish = 'insert')");
            LOG.info("Created publication {} for shard {} of {}: the aggregates whose {} hashes to {}", publication, filter.index(), filter.count(),
                    filter.keyColumn(), filter.index());
        }
        else {
            c.setAutoCommit(false);
            execute(c, "ALTER PUBLICATION " + quote(publication) + " SET (publish = 'insert')");
            execute(c, "ALTER PUBLICATION " + quote(publication) + " SET TABLE " + tableList);
            c.commit();
            LOG.info("Publication {} now carries shard {} of {} only", publication, filter.index(), filter.count());
        }
    }

    /** An unsharded relay on a publication with a shard's filter would silently publish only a share of the outbox. */
    private void refuseForeignFilters(Map<String, Published> published) throws SQLException {
        if (filter != null) {
            return;
        }
        for (Map.Entry<String, Published> e : published.entrySet()) {
            if (e.getValue().rowFilter() != null) {
                throw new SQLException("publication " + publication + " has a row filter on " + e.getKey() + " (" + e.getValue().rowFilter()
                        + "), so it would publish only part of the outbox: drop the filter, or set relay.shard.count and relay.shard.index for it");
            }
        }
    }

    /** Each published table ({@code schema.table}) with its column list and row filter; null if there is no such publication. */
    private Map<String, Published> currentPublication(Connection c) throws SQLException {
        Map<String, Published> current = null;
        try (PreparedStatement ps = c.prepareStatement("SELECT n.nspname || '.' || cl.relname, "
                + "(SELECT array_agg(a.attname ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = r.prrelid AND a.attnum = ANY (r.prattrs)), "
                + "pg_get_expr(r.prqual, r.prrelid) "
                + "FROM pg_publication p LEFT JOIN pg_publication_rel r ON r.prpubid = p.oid "
                + "LEFT JOIN pg_class cl ON cl.oid = r.prrelid LEFT JOIN pg_namespace n ON n.oid = cl.relnamespace WHERE p.pubname = ?")) {
            ps.setString(1, publication);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    if (current == null) {
                        current = new LinkedHashMap<>();
                    }
                    if (rs.getString(1) != null) {
                        Array attnames = rs.getArray(2);
                        current.put(rs.getString(1), new Published(attnames == null ? null : List.of((String[]) attnames.getArray()), rs.getString(3)));
                    }
                }
            }
        }
        return current;
    }

    private void requireColumnLists(Connection c) throws SQLException {
        if (filter != null && c.getMetaData().getDatabaseMajorVersion() < 15) {
            throw new SQLException("relay.shard.count needs PostgreSQL 15 or later (row filters in publications); this server is "
                    + c.getMetaData().getDatabaseProductVersion() + ": run one relay (relay.shard.count=1)");
        }
        if (!columns.isEmpty() && !derived && c.getMetaData().getDatabaseMajorVersion() < 15) {
            throw new SQLException(SETTING + " needs PostgreSQL 15 or later (column lists in publications); this server is "
                    + c.getMetaData().getDatabaseProductVersion() + ": remove the setting");
        }
    }

    /** The configured columns of {@code table} in the table's own order, after checking each exists and the primary key is among them. */
    private List<String> columnsToPublish(Connection c, String table) throws SQLException {
        Set<String> existing = new LinkedHashSet<>();
        Set<String> primaryKey = new LinkedHashSet<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT a.attname, EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid "
                + "AND i.indisprimary AND a.attnum = ANY (i.indkey)) FROM pg_attribute a WHERE a.attrelid = to_regclass(?) "
                + "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum")) {
            ps.setString(1, table);
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    existing.add(rs.getString(1));
                    if (rs.getBoolean(2)) {
                        primaryKey.add(rs.getString(1));
                    }
                }
            }
        }
        if (existing.isEmpty()) {
            throw new SQLException("outbox table " + table + " (debezium.source.table.include.list) does not exist in " + database.jdbcUrl());
        }
        if (derived) {
            // What the router reads that the table has, and the key Debezium builds each record's key from.
            List<String> ordered = new ArrayList<>(existing);
            ordered.removeIf(col -> !columns.contains(col) && !primaryKey.contains(col));
            return List.copyOf(ordered);
        }
        List<String> unknown = columns.stream().filter(col -> !existing.contains(col)).toList();
        if (!unknown.isEmpty()) {
            throw new SQLException(SETTING + " names " + String.join(", ", unknown) + ", which " + table + " does not have (its columns: "
                    + String.join(", ", existing) + ")");
        }
        List<String> keyLeftOut = primaryKey.stream().filter(col -> !columns.contains(col)).toList();
        if (!keyLeftOut.isEmpty()) {
            throw new SQLException(SETTING + " must include the primary key of " + table + " (" + String.join(", ", keyLeftOut)
                    + "): Debezium builds each record's key from it");
        }
        List<String> ordered = new ArrayList<>(existing);
        ordered.retainAll(columns);
        return List.copyOf(ordered);
    }

    private static String tableList(Map<String, List<String>> wanted) {
        return wanted.entrySet().stream()
                .map(e -> quoteQualified(e.getKey()) + (e.getValue() == null ? "" : " (" + e.getValue().stream().map(SqlIdentifiers::quote)
                        .collect(Collectors.joining(", ")) + ")"))
                .collect(Collectors.joining(", "));
    }

    private static void execute(Connection c, String sql) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }
}
