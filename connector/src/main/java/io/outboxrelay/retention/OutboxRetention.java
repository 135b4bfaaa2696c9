package io.outboxrelay.retention;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayDeque;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.RelaySettings;
import io.outboxrelay.metrics.RelayMetrics;
import io.outboxrelay.source.StoredOffset;

/**
 * Deletes outbox rows that are older than {@code relay.outbox.retention.ms} and provably behind the
 * stored offset, in small batches, on the leader only.
 *
 * A row carries no LSN, and neither its timestamp nor its transaction id orders it against the
 * offset (a long transaction commits after younger ones). So each run first takes a watermark: the
 * oldest transaction still running ({@code xmin} of a fresh snapshot) and then the WAL insert
 * position. Every transaction older than that {@code xmin} had finished, so its commit record lies
 * before that position. Once the stored offset has passed the position, pgoutput (which streams
 * in commit order) has delivered every such transaction completely: its rows may go. Rows whose
 * transaction was still running, or had not begun, stay until a later watermark covers them. A
 * stalled relay (broker down, nothing confirmed) therefore deletes nothing new.
 */
public final class OutboxRetention implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(OutboxRetention.class);
    private static final int WATERMARKS_KEPT = 1_000;

    private final RelayConfig config;
    private final RelaySettings.Retention settings;
    private final RelayMetrics metrics;
    private final BooleanSupplier leads;
    private final ArrayDeque<Watermark> watermarks = new ArrayDeque<>();
    private final ScheduledExecutorService runner = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "outbox-relay-retention");
        t.setDaemon(true);
        return t;
    });
    private volatile String lastFailure;

    /** A snapshot's oldest running transaction (64-bit, with epoch) and the WAL insert position read after it. */
    record Watermark(long xmin, long lsn) {
    }

    public OutboxRetention(RelayConfig config, RelayMetrics metrics, BooleanSupplier leads) {
        this.config = config;
        this.settings = config.relay().retention();
        this.metrics = metrics;
        this.leads = leads;
    }

    public void start() {
        if (settings.enabled()) {
            runner.scheduleWithFixedDelay(this::runSafely, settings.interval().toMillis(), settings.interval().toMillis(), TimeUnit.MILLISECONDS);
            LOG.info("Outbox retention: rows older than {} ms and behind the stored offset are deleted every {} ms (relay.outbox.retention.*)",
                    settings.age().toMillis(), settings.interval().toMillis());
        }
    }

    private void runSafely() {
        if (!leads.getAsBoolean()) {
            return;
        }
        try {
            long deleted = runOnce();
            if (lastFailure != null) {
                LOG.info("Outbox retention works again");
            }
            lastFailure = null;
            if (deleted > 0) {
                LOG.debug("Outbox retention deleted {} row(s)", deleted);
            }
        }
        catch (SQLException | RuntimeException e) {
            String why = describe(e);
            if (!why.equals(lastFailure)) {
                LOG.error("Outbox retention failed: {}; retrying every {} ms", why, settings.interval().toMillis());
            }
            lastFailure = why;
        }
    }

    /** One run: a new watermark, then deletes what the newest watermark behind the stored offset covers. Returns the rows deleted. */
    long runOnce() throws SQLException {
        try (Connection c = config.database().connect("outbox-relay retention")) {
            Watermark now = watermark(c);
            synchronized (watermarks) {
                watermarks.addLast(now);
                while (watermarks.size() > WATERMARKS_KEPT) {
                    watermarks.removeFirst();
                }
            }
            StoredOffset offset = StoredOffset.of(config);
            Watermark covered = offset == null ? null : newestBehind(offset.lsn());
            if (covered == null) {
                return 0;
            }
            long total = 0;
            for (String table : config.outboxTables()) {
                total += deleteCovered(c, table, covered);
            }
            metrics.outboxRowsDeleted(total);
            return total;
        }
    }

    /** The newest watermark strictly before {@code offsetLsn}; the older ones are dropped, since it covers all they do. */
    private Watermark newestBehind(long offsetLsn) {
        synchronized (watermarks) {
            Watermark found = null;
            for (Watermark w : watermarks) {
                if (Long.compareUnsigned(w.lsn(), offsetLsn) < 0) {
                    found = w;
                }
            }
            if (found != null) {
                while (watermarks.peekFirst() != found) {
                    watermarks.removeFirst();
                }
            }
            return found;
        }
    }

    private static Watermark watermark(Connection c) throws SQLException {
        long xmin;
        try (PreparedStatement ps = c.prepareStatement("SELECT txid_snapshot_xmin(txid_current_snapshot())"); ResultSet rs = ps.executeQuery()) {
            rs.next();
            xmin = rs.getLong(1);
        }
        // Read after the snapshot: every transaction that had finished by then wrote its commit record before this position.
        try (PreparedStatement ps = c.prepareStatement("SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"); ResultSet rs = ps.executeQuery()) {
            rs.next();
            return new Watermark(xmin, rs.getBigDecimal(1).longValue());
        }
    }

    private long deleteCovered(Connection c, String table, Watermark covered) throws SQLException {
        // age() compares 32-bit xids the wraparound-safe way: older than the watermark's xmin means a larger age.
        String sql = "DELETE FROM " + table + " WHERE ctid = ANY(ARRAY(SELECT ctid FROM " + table + " WHERE age(xmin) > age((? % 4294967296)::text::xid) "
                + "AND " + settings.column() + " < now() - ? * interval '1 millisecond'"
                // A shard knows only its own offset: it deletes only its own aggregates' rows.
                + (config.shardFilter() == null ? "" : " AND " + config.shardFilter().predicate()) + " LIMIT ?))";
        long total = 0;
        try (PreparedStatement ps = c.prepareStatement(sql)) {
            int deleted;
            do {
                ps.setLong(1, covered.xmin());
                ps.setLong(2, settings.age().toMillis());
                ps.setInt(3, settings.batch());
                deleted = ps.executeUpdate();
                total += deleted;
            } while (deleted == settings.batch());
        }
        return total;
    }

    private String describe(Exception e) {
        String state = e instanceof SQLException s && s.getSQLState() != null ? s.getSQLState() : "";
        String tables = String.join(", ", config.outboxTables());
        return switch (state) {
            case "42501" -> e.getMessage() + ": GRANT DELETE ON " + tables + " TO " + config.database().user() + " (relay.outbox.retention.ms)";
            case "42703" -> e.getMessage() + ": set relay.outbox.retention.column to a timestamp column of " + tables;
            default -> e.getMessage();
        };
    }

    @Override
    public void close() {
        runner.shutdownNow();
    }
}
