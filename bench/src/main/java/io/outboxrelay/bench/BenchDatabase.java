package io.outboxrelay.bench;

import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.Set;

import io.outboxrelay.testing.MixedWriter;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.TestServers;

/**
 * The benchmark's own database on the local PostgreSQL, made anew for each run (its slots
 * dropped first), with the standard outbox table.
 */
final class BenchDatabase {

    static final String NAME = "outbox_relay_bench";
    static final String OUTBOX_DDL = "CREATE TABLE outbox_event (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
            + "aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb, "
            + "created_at timestamptz NOT NULL DEFAULT now())";

    private final TestServers.PostgresEndpoint server = TestServers.postgres();

    TestServers.PostgresEndpoint server() {
        return server;
    }

    void recreate() throws SQLException {
        try (Connection c = connect("postgres"); Statement s = c.createStatement()) {
            s.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '" + NAME + "' AND NOT active");
            s.execute("DROP DATABASE IF EXISTS " + NAME + " WITH (FORCE)");
            s.execute("CREATE DATABASE " + NAME);
        }
        try (Connection c = connect(); Statement s = c.createStatement()) {
            s.execute(OUTBOX_DDL);
            // The table soak.sh --mixed writes beside outbox rows; the relay does not publish it.
            s.execute(MixedWriter.OTHER_DDL);
        }
    }

    /** Empties the outbox between workloads (truncation is not an event for the relay). */
    void truncate() throws SQLException {
        try (Connection c = connect(); Statement s = c.createStatement()) {
            s.execute("TRUNCATE outbox_event");
        }
    }

    void dropSlot(String slot) throws SQLException {
        try (Connection c = connect(); PreparedStatement ps = c.prepareStatement(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE (slot_name = ? OR slot_name ~ ('^' || ? || '_[0-9]+of[0-9]+$')) "
                        + "AND NOT active")) {
            // The slot, and a sharded run's slots (<slot>_<k>of<N>).
            ps.setString(1, slot);
            ps.setString(2, slot);
            ps.execute();
        }
    }

    Set<String> ids(String aggregatePrefix) throws SQLException {
        return OutboxWriter.committedIds(this::connect, "outbox_event", aggregatePrefix);
    }

    Connection connect() throws SQLException {
        return connect(NAME);
    }

    private Connection connect(String database) throws SQLException {
        return DriverManager.getConnection("jdbc:postgresql://" + server.host() + ":" + server.port() + "/" + database, server.user(), server.password());
    }
}
