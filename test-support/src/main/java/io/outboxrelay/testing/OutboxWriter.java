package io.outboxrelay.testing;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Writes outbox rows ({@code aggregatetype, aggregateid, type, payload}) in single-row transactions
 * on a thread of its own, through faults: ids are made here and inserted with
 * {@code ON CONFLICT DO NOTHING}, so retrying a commit whose outcome was lost never adds a second
 * event. Payloads are {@code {"agg": A, "seq": N}}, N rising per writer, which
 * {@link DeliveryCheck} reads back to check order. Records each event's commit time.
 */
public final class OutboxWriter implements AutoCloseable {

    public interface ConnectionSource {
        Connection connect() throws SQLException;
    }

    private final ConnectionSource source;
    private final String table;
    private final String prefix;
    private final int aggregates;
    private final int total;
    private final int perSecond;
    private final int payloadBytes;
    private final Map<String, Long> commitNanos = new ConcurrentHashMap<>();
    private final Thread thread;
    private volatile boolean stop;
    private volatile int written;
    private volatile int retries;

    private OutboxWriter(ConnectionSource source, String table, String prefix, int aggregates, int total, int perSecond, int payloadBytes) {
        this.source = source;
        this.table = table;
        this.prefix = prefix;
        this.aggregates = aggregates;
        this.total = total;
        this.perSecond = perSecond;
        this.payloadBytes = payloadBytes;
        this.thread = new Thread(this::write, "outbox-writer-" + prefix);
    }

    /** Starts writing {@code total} events over {@code aggregates} aggregates, at {@code perSecond} (0: as fast as it can). */
    public static OutboxWriter start(ConnectionSource source, String table, String prefix, int aggregates, int total, int perSecond) {
        return start(source, table, prefix, aggregates, total, perSecond, 0);
    }

    /** As {@link #start(ConnectionSource, String, String, int, int, int)}, with payloads padded to about {@code payloadBytes}. */
    public static OutboxWriter start(ConnectionSource source, String table, String prefix, int aggregates, int total, int perSecond, int payloadBytes) {
        OutboxWriter writer = new OutboxWriter(source, table, prefix, aggregates, total, perSecond, payloadBytes);
        writer.thread.start();
        return writer;
    }

    private void write() {
        String sql = "INSERT INTO " + table + " (id, aggregatetype, aggregateid, type, payload) VALUES (?::uuid, 'order', ?, 'T', ?::jsonb) "
                + "ON CONFLICT (id) DO NOTHING";
        long startNanos = System.nanoTime();
        Connection c = null;
        try {
            for (int i = 0; i < total && !stop; i++) {
                if (perSecond > 0) {
                    long due = startNanos + i * 1_000_000_000L / perSecond;
                    long wait = due - System.nanoTime();
                    if (wait > 0) {
                        TimeUnit.NANOSECONDS.sleep(wait);
                    }
                }
                String id = UUID.randomUUID().toString();
                String aggregate = prefix + "-" + (i % aggregates);
                while (!stop) {
                    try {
                        if (c == null) {
                            c = source.connect();
                        }
                        try (PreparedStatement ps = c.prepareStatement(sql)) {
                            ps.setString(1, id);
                            ps.setString(2, aggregate);
                            ps.setString(3, payload(aggregate, i));
                            ps.executeUpdate();
                        }
                        commitNanos.put(id, System.nanoTime());
                        written++;
                        break;
                    }
                    catch (SQLException | AssertionError e) {
                        // pgjdbc raises AssertionError from a dead connection when assertions are on.
                        retries++;
                        closeQuietly(c);
                        c = null;
                        Thread.sleep(200);
                    }
                }
            }
        }
        catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        finally {
            closeQuietly(c);
        }
    }

    private String payload(String aggregate, int seq) {
        String json = "{\"agg\": \"" + aggregate + "\", \"seq\": " + seq;
        int pad = payloadBytes - json.length() - 12;
        return pad > 0 ? json + ", \"pad\": \"" + "x".repeat(pad) + "\"}" : json + "}";
    }

    /** The ids of the rows in {@code table} whose aggregate id starts with {@code aggregatePrefix}: what was committed. */
    public static Set<String> committedIds(ConnectionSource source, String table, String aggregatePrefix) throws SQLException {
        Set<String> ids = new HashSet<>();
        try (Connection c = source.connect(); PreparedStatement ps = c.prepareStatement("SELECT id::text FROM " + table + " WHERE aggregateid LIKE ?")) {
            ps.setString(1, aggregatePrefix + "%");
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    ids.add(rs.getString(1));
                }
            }
        }
        return ids;
    }

    /** Waits until every event is written; false if {@code timeoutMillis} passed first. */
    public boolean join(long timeoutMillis) throws InterruptedException {
        thread.join(timeoutMillis);
        return !thread.isAlive();
    }

    /** Waits until every event is written; fails once none has been written for {@code stall} (see {@link Progress}). */
    public void awaitDone(java.time.Duration stall) throws InterruptedException {
        Progress.until("outbox writer " + prefix + " to write its " + total + " events", stall, () -> written, w -> !thread.isAlive());
    }

    public int written() {
        return written;
    }

    /** Inserts that failed and were tried again (the database was away). */
    public int retries() {
        return retries;
    }

    /** {@link System#nanoTime()} when each event's transaction committed, by event id. */
    public Map<String, Long> commitNanos() {
        return commitNanos;
    }

    @Override
    public void close() throws InterruptedException {
        stop = true;
        thread.join(10_000);
    }

    private static void closeQuietly(Connection c) {
        try {
            if (c != null) {
                c.close();
            }
        }
        catch (SQLException | AssertionError ignored) {
            // Already broken.
        }
    }
}
