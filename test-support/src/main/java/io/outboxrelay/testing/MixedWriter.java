package io.outboxrelay.testing;

import java.io.StringReader;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicIntegerArray;

import org.postgresql.PGConnection;

/**
 * Writes outbox rows the ways applications do, from several sessions at once: single-row
 * transactions, batches of statements, one multi-row {@code INSERT … VALUES}, {@code COPY} (whose
 * rows share one WAL record, and so one LSN, per heap page), outbox rows beside writes to a table
 * the relay does not publish, and logical decoding messages (transactional and not) among them.
 * Each session owns its aggregates, so per-aggregate order is its commit order; payloads are
 * {@code {"agg": A, "seq": N}} with N rising per session, which {@link DeliveryCheck} reads back.
 * Sessions pause briefly inside their transactions so that others commit while they are open.
 * What was committed is read back from the table ({@link OutboxWriter#committedIds}), never taken
 * from here. A session whose connection is lost (PostgreSQL restarted) connects again and goes on.
 */
public final class MixedWriter implements AutoCloseable {

    /** The table the relay does not publish; written beside outbox rows. */
    public static final String OTHER_DDL = "CREATE TABLE IF NOT EXISTS mixed_other (id bigserial PRIMARY KEY, note text)";

    /** How a transaction writes its events. */
    public enum Shape { SINGLE, BATCH, MULTI_VALUES, COPY, BESIDE_OTHER_TABLE, WITH_MESSAGES }

    private final OutboxWriter.ConnectionSource source;
    private final String table;
    private final String prefix;
    private final int perSecond;
    private final List<Thread> threads = new ArrayList<>();
    private final AtomicIntegerArray eventsByShape = new AtomicIntegerArray(Shape.values().length);
    private final AtomicIntegerArray transactionsByShape = new AtomicIntegerArray(Shape.values().length);
    private final AtomicInteger outages = new AtomicInteger();
    private volatile boolean stop;
    private volatile Throwable failure;

    private MixedWriter(OutboxWriter.ConnectionSource source, String table, String prefix, int perSecond) {
        this.source = source;
        this.table = table;
        this.prefix = prefix;
        this.perSecond = perSecond;
    }

    /**
     * Starts {@code sessions} sessions writing about {@code perSecond} events a second in all, each
     * drawing shapes and sizes from its own generator seeded from {@code seed}.
     */
    public static MixedWriter start(OutboxWriter.ConnectionSource source, String table, String prefix, int sessions, int perSecond, long seed) {
        MixedWriter writer = new MixedWriter(source, table, prefix, perSecond);
        for (int s = 0; s < sessions; s++) {
            int session = s;
            Random random = new Random(seed * 31 + s);
            Thread t = new Thread(() -> writer.run(session, sessions, random), "mixed-writer-" + prefix + "-" + s);
            writer.threads.add(t);
            t.start();
        }
        return writer;
    }

    private void run(int session, int sessions, Random random) {
        double perSessionPerNano = perSecond / (double) sessions / 1e9;
        long start = System.nanoTime();
        long written = 0;
        int seq = 0;
        Connection c = null;
        try {
            while (!stop) {
                Shape shape = Shape.values()[random.nextInt(Shape.values().length)];
                int rows = switch (shape) {
                    case SINGLE -> 1;
                    case COPY -> 5 + random.nextInt(56);
                    default -> 2 + random.nextInt(19);
                };
                List<String[]> events = new ArrayList<>(rows);
                for (int i = 0; i < rows; i++) {
                    String aggregate = prefix + "-s" + session + "-a" + random.nextInt(5);
                    events.add(new String[] { UUID.randomUUID().toString(), aggregate, "{\"agg\": \"" + aggregate + "\", \"seq\": " + (seq++) + "}" });
                }
                try {
                    if (c == null) {
                        c = source.connect();
                    }
                    write(c, shape, events, random);
                }
                catch (SQLException e) {
                    if (!outage(e)) {
                        throw e;
                    }
                    // PostgreSQL restarted under the writer: the transaction is dropped (committed or not, the table says which) and
                    // the session goes on with a new connection, as an application would.
                    outages.incrementAndGet();
                    closeQuietly(c);
                    c = null;
                    Thread.sleep(200);
                    continue;
                }
                eventsByShape.addAndGet(shape.ordinal(), rows);
                transactionsByShape.incrementAndGet(shape.ordinal());
                written += rows;
                long due = start + (long) (written / perSessionPerNano);
                long wait = due - System.nanoTime();
                if (wait > 0) {
                    TimeUnit.NANOSECONDS.sleep(wait);
                }
            }
        }
        catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        catch (SQLException | RuntimeException e) {
            // Anything but the database going away is the test's to report.
            failure = e;
        }
        finally {
            closeQuietly(c);
        }
    }

    /** Whether the connection was lost (PostgreSQL shut down or restarted), rather than the statement refused. */
    private static boolean outage(SQLException e) {
        String state = e.getSQLState();
        return state != null && (state.startsWith("08") || state.startsWith("57P"));
    }

    private static void closeQuietly(Connection c) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        }
        catch (SQLException e) {
            // The connection is gone already.
        }
    }

    private void write(Connection c, Shape shape, List<String[]> events, Random random) throws SQLException, InterruptedException {
        c.setAutoCommit(shape == Shape.SINGLE || shape == Shape.MULTI_VALUES);
        try {
            switch (shape) {
                case SINGLE, BATCH -> {
                    for (String[] e : events) {
                        insert(c, List.<String[]>of(e));
                        pause(random);
                    }
                }
                case MULTI_VALUES -> insert(c, events);
                case COPY -> copy(c, events);
                case BESIDE_OTHER_TABLE -> {
                    for (String[] e : events) {
                        other(c);
                        insert(c, List.<String[]>of(e));
                        pause(random);
                    }
                    other(c);
                }
                case WITH_MESSAGES -> {
                    for (String[] e : events) {
                        message(c, random.nextBoolean());
                        insert(c, List.<String[]>of(e));
                        pause(random);
                    }
                }
            }
            if (!c.getAutoCommit()) {
                c.commit();
            }
        }
        catch (SQLException | InterruptedException e) {
            if (!c.getAutoCommit()) {
                c.rollback();
            }
            throw e;
        }
    }

    private static void pause(Random random) throws InterruptedException {
        if (random.nextInt(4) == 0) {
            Thread.sleep(random.nextInt(4));
        }
    }

    private void insert(Connection c, List<String[]> events) throws SQLException {
        StringBuilder sql = new StringBuilder("INSERT INTO " + table + " (id, aggregatetype, aggregateid, type, payload) VALUES ");
        for (int i = 0; i < events.size(); i++) {
            sql.append(i == 0 ? "" : ", ").append("(?::uuid, 'order', ?, 'T', ?::jsonb)");
        }
        try (PreparedStatement ps = c.prepareStatement(sql.toString())) {
            int p = 1;
            for (String[] e : events) {
                ps.setString(p++, e[0]);
                ps.setString(p++, e[1]);
                ps.setString(p++, e[2]);
            }
            ps.executeUpdate();
        }
    }

    /** Every column given, none defaulted by a volatile function: PostgreSQL then writes the rows of each heap page in one WAL record. */
    private void copy(Connection c, List<String[]> events) throws SQLException {
        StringBuilder data = new StringBuilder();
        for (String[] e : events) {
            data.append(e[0]).append('\t').append("order").append('\t').append(e[1]).append('\t').append('T').append('\t').append(e[2]).append('\n');
        }
        try {
            c.unwrap(PGConnection.class).getCopyAPI().copyIn("COPY " + table + " (id, aggregatetype, aggregateid, type, payload) FROM STDIN",
                    new StringReader(data.toString()));
        }
        catch (java.io.IOException e) {
            throw new SQLException("COPY failed: " + e.getMessage(), e);
        }
    }

    private static void other(Connection c) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("INSERT INTO mixed_other (note) VALUES ('beside an outbox row')");
        }
    }

    private static void message(Connection c, boolean transactional) throws SQLException {
        try (Statement s = c.createStatement()) {
            s.execute("SELECT pg_logical_emit_message(" + transactional + ", 'mixed-writer', 'between outbox rows')");
        }
    }

    /** Events committed so far, by shape. */
    public Map<Shape, Integer> eventsByShape() {
        Map<Shape, Integer> m = new EnumMap<>(Shape.class);
        for (Shape s : Shape.values()) {
            m.put(s, eventsByShape.get(s.ordinal()));
        }
        return m;
    }

    /** Transactions committed so far, by shape. */
    public Map<Shape, Integer> transactionsByShape() {
        Map<Shape, Integer> m = new EnumMap<>(Shape.class);
        for (Shape s : Shape.values()) {
            m.put(s, transactionsByShape.get(s.ordinal()));
        }
        return m;
    }

    /** Transactions dropped because PostgreSQL went away under them (each session then reconnects). */
    public int outages() {
        return outages.get();
    }

    /** Why a session stopped early, or null. */
    public Throwable failure() {
        return failure;
    }

    /** Stops every session after its current transaction. */
    @Override
    public void close() throws InterruptedException {
        stop = true;
        for (Thread t : threads) {
            t.join(30_000);
        }
    }
}
