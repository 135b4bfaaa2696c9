package io.outboxrelay;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Map;

import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.RelayConfigLoader;
import io.outboxrelay.engine.EngineSupervisor;
import io.outboxrelay.metrics.RelayMetrics;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.TestDatabase;

/**
 * Runs the relay in-process against a test database and broker: writes a properties file the way a
 * user would, loads it with the real loader, and drives an {@link EngineSupervisor}.
 */
public final class RelayHarness implements AutoCloseable {

    private final TestDatabase db;
    private final Path file;
    private final String slot;
    private EngineSupervisor supervisor;
    private RelayMetrics metrics;
    private Thread thread;

    private RelayHarness(TestDatabase db, Path file, String slot) {
        this.db = db;
        this.file = file;
        this.slot = slot;
    }

    /** Writes {@code config} to a file in {@code dir}, starts the relay and waits until it streams. */
    public static RelayHarness start(TestDatabase db, Path dir, Map<String, String> config) throws Exception {
        return startFile(db, RelayFiles.write(dir, config));
    }

    /** Starts the relay on a properties file as given, and waits until its slot is active. */
    public static RelayHarness startFile(TestDatabase db, Path file) throws Exception {
        RelayConfig config = RelayConfigLoader.load(file, null);
        RelayHarness harness = new RelayHarness(db, file, config.slotName());
        harness.startSupervisor(config);
        return harness;
    }

    private void startSupervisor(RelayConfig config) throws SQLException, InterruptedException {
        metrics = RelayMetrics.prometheus(config.name());
        supervisor = new EngineSupervisor(config, metrics);
        thread = new Thread(() -> {
            try {
                supervisor.run();
            }
            catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, "relay-under-test");
        thread.start();
        awaitSlotActive(Duration.ofSeconds(60));
    }

    /** Stops the relay gracefully (drain, flush offsets) and starts it again on the same file. */
    public void restart() throws Exception {
        stop();
        startSupervisor(RelayConfigLoader.load(file, null));
    }

    public void stop() throws InterruptedException {
        if (supervisor != null) {
            supervisor.stop();
            thread.join(60_000);
            supervisor = null;
        }
    }

    public EngineSupervisor supervisor() {
        return supervisor;
    }

    /** The current run's metrics (a restart starts new ones). */
    public RelayMetrics metrics() {
        return metrics;
    }

    public String slot() {
        return slot;
    }

    private void awaitSlotActive(Duration timeout) throws SQLException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement("SELECT active FROM pg_replication_slots WHERE slot_name = ?")) {
            ps.setString(1, slot);
            while (System.nanoTime() < deadline) {
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next() && rs.getBoolean(1)) {
                        return;
                    }
                }
                if (!thread.isAlive()) {
                    throw new IllegalStateException("the relay stopped before streaming");
                }
                Thread.sleep(100);
            }
        }
        throw new IllegalStateException("slot " + slot + " did not become active within " + timeout);
    }

    @Override
    public void close() throws InterruptedException {
        stop();
    }

    /** Inserts outbox rows; {@code rows} are (aggregatetype, aggregateid, type, payload) quadruples, in one transaction. */
    public static void insert(TestDatabase db, String[]... rows) throws SQLException {
        try (Connection c = db.connect()) {
            c.setAutoCommit(false);
            try (PreparedStatement ps = c.prepareStatement("INSERT INTO outbox_event (aggregatetype, aggregateid, type, payload) VALUES (?, ?, ?, ?::jsonb)")) {
                for (String[] r : rows) {
                    ps.setString(1, r[0]);
                    ps.setString(2, r[1]);
                    ps.setString(3, r[2]);
                    ps.setString(4, r[3]);
                    ps.addBatch();
                }
                ps.executeBatch();
            }
            c.commit();
        }
    }

    /**
     * Starts a thread that writes {@code total} single-row transactions into {@code table}, spread
     * round-robin over {@code aggregates} aggregates named {@code prefix-N}, each payload carrying its
     * aggregate and sequence number: {"agg": "prefix-N", "seq": i}.
     */
    public static Thread writeInBackground(TestDatabase db, String table, int total, String prefix, int aggregates) {
        Thread writer = new Thread(() -> {
            try (Connection c = db.connect(); PreparedStatement insert = c.prepareStatement(
                    "INSERT INTO " + table + " (aggregatetype, aggregateid, type, payload) VALUES ('order', ?, 'T', ?::jsonb)")) {
                for (int i = 0; i < total; i++) {
                    String aggregate = prefix + "-" + (i % aggregates);
                    insert.setString(1, aggregate);
                    insert.setString(2, "{\"agg\": \"" + aggregate + "\", \"seq\": " + i + "}");
                    insert.executeUpdate();
                }
            }
            catch (SQLException e) {
                throw new IllegalStateException(e);
            }
        }, "outbox-writer");
        writer.start();
        return writer;
    }
}
