package io.outboxrelay.testing;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Locale;
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

    private String name;

    @Override
    public void beforeAll(ExtensionContext context) throws SQLException {
        String base = context.getRequiredTestClass().getSimpleName().toLowerCase(Locale.ROOT);
        name = "t_" + base.substring(0, Math.min(base.length(), 40)) + "_" + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x1000, 0xffff));
        try (Connection c = admin(); Statement s = c.createStatement()) {
            s.execute("CREATE DATABASE " + name);
        }
    }

    @Override
    public void afterAll(ExtensionContext context) throws SQLException {
        if (name == null) {
            return;
        }
        try (Connection c = admin(); Statement s = c.createStatement()) {
            s.execute("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = '" + name + "' AND active_pid IS NOT NULL");
            s.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '" + name + "' AND NOT active");
            s.execute("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
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
