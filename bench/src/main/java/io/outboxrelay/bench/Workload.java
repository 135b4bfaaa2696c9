package io.outboxrelay.bench;

import java.sql.Connection;
import java.sql.Statement;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.ArrayList;

import io.outboxrelay.testing.OutboxWriter;

/** A way of writing the outbox; returns when everything is committed, with each event's commit time. */
interface Workload {

    /** Payloads are about this size, as the workloads ask. */
    int PAYLOAD_BYTES = 300;

    String label();

    /** The aggregate id prefix this workload writes, to find its rows again. */
    String prefix();

    /** Commit {@link System#nanoTime()} by event id; events absent from the map committed at {@code firstCommit}. */
    record Written(Map<String, Long> commitNanos, long firstCommitNanos) {
        long commitOf(String id) {
            return commitNanos.getOrDefault(id, firstCommitNanos);
        }

        /** How fast the workload committed its events, or NaN when they all committed at once. */
        double committedPerSecond() {
            long last = commitNanos.values().stream().mapToLong(Long::longValue).max().orElse(firstCommitNanos);
            return last > firstCommitNanos ? commitNanos.size() / ((last - firstCommitNanos) / 1e9) : Double.NaN;
        }
    }

    Written write(BenchDatabase db) throws Exception;

    /** Seconds after the first measured event at which the subject is SIGKILLed and started again; 0: never. */
    default int killAfterSeconds() {
        return 0;
    }

    /** Events written before the measured ones, under the aggregate prefix {@code warmup-}; none by default. */
    default void warmUp(BenchDatabase db) throws Exception {
    }

    /** {@code events} rows over {@code aggregates} aggregates committed in one transaction. */
    static Workload bulk(int events, int aggregates) {
        return new Workload() {
            @Override
            public String label() {
                return "bulk: " + events + " rows, 1 tx" + (aggregates == 1_000 ? "" : ", " + aggregates + " aggregate(s)");
            }

            @Override
            public String prefix() {
                return "bulk-";
            }

            @Override
            public Written write(BenchDatabase db) throws Exception {
                try (Connection c = db.connect(); Statement s = c.createStatement()) {
                    c.setAutoCommit(false);
                    s.execute("INSERT INTO outbox_event (aggregatetype, aggregateid, type, payload) SELECT 'order', 'bulk-' || (i % " + aggregates
                            + "), 'OrderPlaced', jsonb_build_object('agg', 'bulk-' || (i % " + aggregates + "), 'seq', i, 'pad', repeat('x', "
                            + (PAYLOAD_BYTES - 50) + ")) "
                            + "FROM generate_series(1, " + events + ") i");
                    c.commit();
                    return new Written(Map.of(), System.nanoTime());
                }
            }
        };
    }

    /** {@code events} single-row transactions from {@code writers} concurrent connections, each with its own aggregates. */
    static Workload smallTransactions(int events, int writers) {
        return new Workload() {
            @Override
            public String label() {
                return "small: " + events + " tx, " + writers + " writers";
            }

            @Override
            public String prefix() {
                return "small-";
            }

            @Override
            public Written write(BenchDatabase db) throws Exception {
                long first = System.nanoTime();
                List<OutboxWriter> running = new ArrayList<>();
                for (int w = 0; w < writers; w++) {
                    running.add(OutboxWriter.start(db::connect, "outbox_event", "small-w" + w, 1000 / writers, events / writers, 0, PAYLOAD_BYTES));
                }
                Map<String, Long> commits = new HashMap<>();
                for (OutboxWriter writer : running) {
                    writer.join(Long.MAX_VALUE);
                    commits.putAll(writer.commitNanos());
                    writer.close();
                }
                return new Written(commits, commits.values().stream().mapToLong(Long::longValue).min().orElse(first));
            }
        };
    }

    /** {@code perSecond} single-row transactions a second for {@code seconds}, after {@code warmUpSeconds} of the same, not measured. */
    static Workload steady(int perSecond, int seconds, int warmUpSeconds) {
        return new Workload() {
            @Override
            public String label() {
                return "steady: " + perSecond + "/s, " + seconds + " s";
            }

            @Override
            public void warmUp(BenchDatabase db) throws Exception {
                if (warmUpSeconds > 0) {
                    try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", "warmup", 1000, perSecond * warmUpSeconds, perSecond, PAYLOAD_BYTES)) {
                        writer.join(Long.MAX_VALUE);
                    }
                }
            }

            @Override
            public String prefix() {
                return "steady-";
            }

            @Override
            public Written write(BenchDatabase db) throws Exception {
                return writeAtRate(db, "steady", perSecond, seconds);
            }
        };
    }

    /** {@code perSecond} single-row transactions a second for {@code seconds}, the subject killed (SIGKILL) and restarted after {@code killAfter} s. */
    static Workload steadyWithKill(int perSecond, int seconds, int killAfter) {
        return new Workload() {
            @Override
            public String label() {
                return "kill: " + perSecond + "/s, " + seconds + " s, SIGKILL at " + killAfter + " s";
            }

            @Override
            public String prefix() {
                return "kill-";
            }

            @Override
            public int killAfterSeconds() {
                return killAfter;
            }

            @Override
            public Written write(BenchDatabase db) throws Exception {
                return writeAtRate(db, "kill", perSecond, seconds);
            }
        };
    }

    /** Single-row transactions under {@code prefix}, {@code perSecond} a second for {@code seconds}, over 1,000 aggregates. */
    private static Written writeAtRate(BenchDatabase db, String prefix, int perSecond, int seconds) throws Exception {
        try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", prefix, 1000, perSecond * seconds, perSecond, PAYLOAD_BYTES)) {
            writer.join(Long.MAX_VALUE);
            Map<String, Long> commits = new HashMap<>(writer.commitNanos());
            return new Written(commits, commits.values().stream().mapToLong(Long::longValue).min().orElse(System.nanoTime()));
        }
    }
}
