package io.outboxrelay.testing;

import java.io.IOException;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.connect.source.SourceRecord;

import io.debezium.embedded.Connect;
import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;

/**
 * A plain Debezium embedded engine (PostgreSQL connector, Connect records) over a test database.
 * Every record it hands over is kept and marked processed at once, then the batch is finished, so
 * offsets are committed as the engine's offset policy says.
 */
public final class TestEngine implements AutoCloseable {

    private final List<SourceRecord> records = new ArrayList<>();
    private final AtomicReference<Throwable> failure = new AtomicReference<>();
    private final ExecutorService executor = Executors.newSingleThreadExecutor();
    private final DebeziumEngine<ChangeEvent<SourceRecord, SourceRecord>> engine;
    private final TestDatabase database;
    private final String slot;

    private TestEngine(TestDatabase database, Properties props) {
        this.database = database;
        this.slot = props.getProperty("slot.name");
        this.engine = DebeziumEngine.create(Connect.class)
                .using(props)
                .using((success, message, error) -> {
                    if (!success) {
                        failure.set(error != null ? error : new IllegalStateException(message));
                    }
                })
                .notifying((batch, committer) -> {
                    for (ChangeEvent<SourceRecord, SourceRecord> event : batch) {
                        synchronized (records) {
                            records.add(event.value());
                            records.notifyAll();
                        }
                        committer.markProcessed(event);
                    }
                    committer.markBatchFinished();
                })
                .build();
    }

    /**
     * Connector settings for an outbox table in {@code database}: pgoutput, a filtered publication,
     * no snapshot, offsets committed after every batch. Callers add {@code offset.storage} and
     * anything else they need.
     */
    public static Properties outboxProperties(TestDatabase database, String slot, String table) {
        TestServers.PostgresEndpoint pg = database.server();
        Properties p = new Properties();
        p.setProperty("name", "engine-" + slot);
        p.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
        p.setProperty("offset.flush.interval.ms", "0");
        p.setProperty("database.hostname", pg.host());
        p.setProperty("database.port", Integer.toString(pg.port()));
        p.setProperty("database.user", pg.user());
        p.setProperty("database.password", pg.password());
        p.setProperty("database.dbname", database.name());
        p.setProperty("topic.prefix", "test");
        p.setProperty("plugin.name", "pgoutput");
        p.setProperty("slot.name", slot);
        p.setProperty("publication.name", slot);
        p.setProperty("publication.autocreate.mode", "filtered");
        p.setProperty("table.include.list", table);
        p.setProperty("snapshot.mode", "no_data");
        p.setProperty("poll.interval.ms", "50");
        return p;
    }

    /** Starts the engine and waits until its replication slot is active, i.e. it streams. */
    public static TestEngine start(TestDatabase database, Properties props) throws SQLException, InterruptedException {
        TestEngine engine = new TestEngine(database, props);
        engine.executor.execute(engine.engine);
        engine.awaitSlotActive(Duration.ofSeconds(60));
        return engine;
    }

    private void awaitSlotActive(Duration timeout) throws SQLException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        try (Connection c = database.connect();
                PreparedStatement ps = c.prepareStatement("SELECT active FROM pg_replication_slots WHERE slot_name = ?")) {
            ps.setString(1, slot);
            while (System.nanoTime() < deadline) {
                if (failure.get() != null) {
                    throw new IllegalStateException("engine failed to start", failure.get());
                }
                try (ResultSet rs = ps.executeQuery()) {
                    if (rs.next() && rs.getBoolean(1)) {
                        return;
                    }
                }
                Thread.sleep(100);
            }
        }
        throw new IllegalStateException("replication slot " + slot + " did not become active within " + timeout);
    }

    /** Waits until at least {@code count} records arrived; fails on timeout or engine failure. */
    public List<SourceRecord> awaitRecords(int count, Duration timeout) throws InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        synchronized (records) {
            while (records.size() < count) {
                if (failure.get() != null) {
                    throw new AssertionError("engine failed", failure.get());
                }
                long left = deadline - System.nanoTime();
                if (left <= 0) {
                    throw new AssertionError("expected " + count + " records within " + timeout + ", got " + records.size());
                }
                records.wait(Math.max(1, Math.min(200, left / 1_000_000)));
            }
            return new ArrayList<>(records);
        }
    }

    public List<SourceRecord> records() {
        synchronized (records) {
            return new ArrayList<>(records);
        }
    }

    @Override
    public void close() throws IOException, InterruptedException {
        engine.close();
        executor.shutdown();
        if (!executor.awaitTermination(60, TimeUnit.SECONDS)) {
            throw new IllegalStateException("engine did not stop within 60 s");
        }
    }
}
