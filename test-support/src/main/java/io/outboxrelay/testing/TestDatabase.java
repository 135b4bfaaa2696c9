package io.outboxrelay.testing;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * A database of its own for one test class, on the real PostgreSQL that {@link TestServers} found.
 * Register it as a static field with {@code @RegisterExtension}. Replication slots are server-wide,
 * so {@link #slotName()} hands out names unique to this database; they are dropped with it.
 */
public final class TestDatabase implements BeforeAllCallback, AfterAllCallback {

    /** The databases this JVM made and has not dropped: a class with two TestDatabases has two of the same class's name at once. */
    private static final Set<String> MINE = ConcurrentHashMap.newKeySet();

    private String name;

    @Override
    public void beforeAll(ExtensionContext context) throws SQLException {
        String base = "t_" + context.getRequiredTestClass().getSimpleName().toLowerCase(Locale.ROOT);
        base = base.substring(0, Math.min(base.length(), 42));
        try (Connection c = admin()) {
            dropLeftovers(c, base);
            name = base + "_" + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xffff));
            try (Statement s = c.createStatement()) {
                s.execute("CREATE DATABASE " + name);
            }
            MINE.add(name);
        }
    }

    @Override
    public void afterAll(ExtensionContext context) throws SQLException {
        if (name != null) {
            try (Connection c = admin()) {
                drop(c, name);
            }
            MINE.remove(name);
        }
    }

    /**
     * A run of this class that was killed before its afterAll (a CI job cut off, a developer's ^C)
     * leaves its database and slots behind, and the slots, being server-wide and named after the
     * relay, collide with this run's. The classes of one run follow each other, so a database of
     * this class's name that exists now, and that this JVM did not make, is such a leftover.
     */
    private static void dropLeftovers(Connection c, String base) throws SQLException {
        List<String> leftovers = new ArrayList<>();
        try (PreparedStatement ps = c.prepareStatement("SELECT datname FROM pg_database WHERE datname ~ ?")) {
            ps.setString(1, "^" + base + "_[0-9a-f]{4}$");
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    if (!MINE.contains(rs.getString(1))) {
                        leftovers.add(rs.getString(1));
                    }
                }
            }
        }
        for (String leftover : leftovers) {
            drop(c, leftover);
        }
    }

    /**
     * Ends the walsenders on {@code database}'s slots, drops the slots once they are inactive (a
     * terminated walsender lets go of its slot a moment later), then the database.
     */
    private static void drop(Connection c, String database) throws SQLException {
        long deadline = System.nanoTime() + 30_000_000_000L;
        try (PreparedStatement terminate = c.prepareStatement(
                "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = ? AND active_pid IS NOT NULL");
                PreparedStatement dropSlots = c.prepareStatement(
                        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = ? AND NOT active");
                PreparedStatement remaining = c.prepareStatement("SELECT count(*) FROM pg_replication_slots WHERE database = ?")) {
            while (true) {
                for (PreparedStatement ps : List.of(terminate, dropSlots)) {
                    ps.setString(1, database);
                    ps.execute();
                }
                remaining.setString(1, database);
                try (ResultSet rs = remaining.executeQuery()) {
                    rs.next();
                    if (rs.getInt(1) == 0) {
                        break;
                    }
                }
                if (System.nanoTime() > deadline) {
                    throw new IllegalStateException("the replication slots of " + database + " stayed in use for 30 s: a relay process outlived its test");
                }
                try {
                    Thread.sleep(100);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("interrupted while dropping " + database, e);
                }
            }
        }
        try (Statement s = c.createStatement()) {
            s.execute("DROP DATABASE IF EXISTS " + database + " WITH (FORCE)");
        }
    }

    public String name() {
        return name;
    }

    public TestServers.PostgresEndpoint server() {
        return TestServers.postgres();
    }

    public String jdbcUrl() {
        return server().jdbcUrl(name);
    }

    public Connection connect() throws SQLException {
        return server().connect(name);
    }

    /** A replication slot (and publication) name that no other test class uses. */
    public String slotName() {
        return name + "_" + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xffff));
    }

    /** Runs statements in autocommit mode. */
    public void execute(String... statements) throws SQLException {
        try (Connection c = connect(); Statement s = c.createStatement()) {
            for (String sql : statements) {
                s.execute(sql);
            }
        }
    }

    private Connection admin() throws SQLException {
        return server().connect("postgres");
    }
}
