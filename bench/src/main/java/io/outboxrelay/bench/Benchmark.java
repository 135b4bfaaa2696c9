package io.outboxrelay.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Callable;

import com.rabbitmq.client.Connection;
import com.rabbitmq.client.Delivery;

import io.outboxrelay.testing.DeliveryCheck;
import io.outboxrelay.testing.ProcessUsage;
import io.outboxrelay.testing.TestBroker;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "bench/run.sh", mixinStandardHelpOptions = true,
        description = "Runs the relay (bin/outbox-relay, a process of its own) through the bulk, small-transaction and steady workloads "
                + "against the local PostgreSQL and RabbitMQ, optionally Debezium Server too, measures RabbitMQ's ceiling with PerfTest, "
                + "verifies every run (all delivered, per-aggregate order) and prints one table. Exits 1 if a run lost or reordered events.")
public final class Benchmark implements Callable<Integer> {

    @Option(names = "--bulk", defaultValue = "100000", description = "Rows in the one bulk transaction (default ${DEFAULT-VALUE}; 0 skips).")
    int bulk;

    @Option(names = "--bulk-aggregates", defaultValue = "1000", description = "Aggregates the bulk rows are spread over (default ${DEFAULT-VALUE}; "
            + "1: one hot aggregate, which relay.dead-letter.order=keep-aggregate publishes one confirm at a time over AMQP).")
    int bulkAggregates;

    @Option(names = "--small", defaultValue = "50000", description = "Single-row transactions (default ${DEFAULT-VALUE}; 0 skips).")
    int small;

    @Option(names = "--writers", defaultValue = "8", description = "Concurrent writers of the small transactions (default ${DEFAULT-VALUE}).")
    int writers;

    @Option(names = "--steady-rate", defaultValue = "1000", description = "Events per second of the steady workload (default ${DEFAULT-VALUE}).")
    int steadyRate;

    @Option(names = "--steady-seconds", defaultValue = "30", description = "Length of the steady workload (default ${DEFAULT-VALUE}; 0 skips).")
    int steadySeconds;

    @Option(names = "--steady-warmup-seconds", defaultValue = "10",
            description = "Events at the steady rate before the measured ones, so that the JIT has compiled the hot path (default ${DEFAULT-VALUE}).")
    int steadyWarmUpSeconds;

    @Option(names = "--ceiling-seconds", defaultValue = "20", description = "Length of the PerfTest run (default ${DEFAULT-VALUE}; 0 skips).")
    int ceilingSeconds;

    @Option(names = "--window", defaultValue = "1000", description = "Publisher-confirm window of the relay and of PerfTest (default ${DEFAULT-VALUE}).")
    int window;

    @Option(names = "--latency-csv", paramLabel = "DIR", description = "Writes each run's per-event commit time and latency (ms) to DIR/<workload>.csv, to find stalls.")
    java.nio.file.Path latencyCsv;

    @Option(names = "--debezium-server", description = "Also runs every workload through Debezium Server 3.6.1 with its RabbitMQ sink, "
            + "with its defaults and tuned, for comparison (bench/run.sh unpacks it into bench/target; it runs on a Java 21+ from /usr/lib/jvm "
            + "or DEBEZIUM_SERVER_JAVA_HOME).")
    boolean debeziumServer;

    @Option(names = "--streams", description = "Also runs every workload through the relay's RabbitMQ Streams sink (debezium.sink.type=rabbitmqstream) "
            + "and, with --debezium-server, through Debezium Server's rabbitmqstream sink; each run publishes to a stream of its own, read back from its first message.")
    boolean streams;

    @Option(names = "--shards", paramLabel = "N", description = "Also runs every workload through N relay processes, one shard each "
            + "(relay.shard.count=N), reporting the total and each shard's throughput.")
    int shards;

    @Option(names = "--idle-seconds", defaultValue = "20", description = "How long each subject's CPU is measured with nothing to relay, "
            + "after 5 s to settle (default ${DEFAULT-VALUE}; 0 skips).")
    int idleSeconds;

    @Option(names = "--kill", description = "Adds a workload that SIGKILLs each subject a third of the way through a steady run and starts it again, "
            + "to count the duplicates a crash leaves (the rate and length of --steady-rate and --steady-seconds).")
    boolean kill;

    @Option(names = { "-p", "--relay-property" }, paramLabel = "KEY=VALUE", description = "Adds or overrides a line of the relay's configuration (repeatable), to compare settings.")
    Map<String, String> relayProperties = new java.util.LinkedHashMap<>();

    public static void main(String[] args) {
        System.exit(new CommandLine(new Benchmark()).execute(args));
    }

    @Override
    public Integer call() throws Exception {
        BenchDatabase db = new BenchDatabase();
        db.recreate();
        TestBroker broker = new TestBroker();
        BenchRelay.declareTopology(broker);
        List<Workload> workloads = new ArrayList<>();
        if (bulk > 0) {
            workloads.add(Workload.bulk(bulk, bulkAggregates));
        }
        if (small > 0) {
            workloads.add(Workload.smallTransactions(small, writers));
        }
        if (steadySeconds > 0) {
            workloads.add(Workload.steady(steadyRate, steadySeconds, steadyWarmUpSeconds));
        }
        if (kill) {
            workloads.add(Workload.steadyWithKill(steadyRate, Math.max(steadySeconds, 9), Math.max(steadySeconds, 9) / 3));
        }
        List<Subject> subjects = new ArrayList<>();
        subjects.add(new RelaySubject(window, relayProperties, false));
        if (debeziumServer) {
            DebeziumServerSubject.both().forEach(subjects::add);
        }
        if (shards > 1) {
            subjects.add(new ShardedRelaySubject(window, relayProperties, shards));
        }
        if (streams) {
            subjects.add(new RelaySubject(window, relayProperties, true));
            if (debeziumServer) {
                DebeziumServerSubject.both(true).forEach(subjects::add);
            }
        }
        List<RunResult> results = new ArrayList<>();
        for (Workload w : workloads) {
            // Each workload through every subject in turn, so that a machine that drifts affects them alike.
            for (Subject subject : subjects) {
                System.out.println("running " + w.label() + " through " + subject.label() + " ...");
                results.add(run(db, broker, w, subject));
            }
        }
        List<String> idle = new ArrayList<>();
        if (idleSeconds > 0) {
            for (Subject subject : subjects) {
                System.out.println("measuring " + subject.label() + " idle for " + idleSeconds + " s ...");
                idle.add(idle(db, subject));
            }
        }
        double ceiling = Double.NaN;
        if (ceilingSeconds > 0) {
            System.out.println("running PerfTest for " + ceilingSeconds + " s ...");
            try {
                ceiling = PerfTestCeiling.measure(broker.server(), Workload.PAYLOAD_BYTES, window, ceilingSeconds);
            }
            catch (java.io.IOException e) {
                System.out.println("PerfTest failed, no ceiling: " + e.getMessage());
            }
        }

        System.out.println();
        System.out.println(RunResult.HEADER);
        results.forEach(r -> System.out.println(r.row()));
        idle.forEach(System.out::println);
        if (!Double.isNaN(ceiling)) {
            System.out.printf("%-52s %8s %10s %10.0f%n", "RabbitMQ PerfTest ceiling", "", "", ceiling);
            for (RunResult r : results) {
                if (r.subject().equals(subjects.get(0).label()) && (r.workload().startsWith("bulk") || r.workload().startsWith("small"))) {
                    System.out.printf("%s: %.0f%% of the ceiling%s%n", r.workload(), 100 * r.eventsPerSecond() / ceiling, comparison(r, results));
                }
            }
        }
        System.out.println("commits/s: how fast the workload itself committed (none for one transaction); latency: commit of the outbox row -> delivery to the consumer; events/s: first commit -> last delivery;"
                + " RSS: peak resident memory of the process; CPU s: its CPU during the workload; start s: process start -> streaming"
                + (steadySeconds > 0 && steadyWarmUpSeconds > 0 ? "; steady: measured after " + steadyWarmUpSeconds + " s at the same rate" : ""));
        return results.stream().allMatch(RunResult::verified) ? 0 : 1;
    }

    /** How the relay's throughput compares with each other subject's on the same workload. */
    private static String comparison(RunResult relay, List<RunResult> results) {
        StringBuilder sb = new StringBuilder();
        for (RunResult other : results) {
            if (other.workload().equals(relay.workload()) && !other.subject().equals(relay.subject()) && other.eventsPerSecond() > 0) {
                sb.append(String.format(", %.1fx %s", relay.eventsPerSecond() / other.eventsPerSecond(), other.subject()));
            }
        }
        return sb.toString();
    }

    private RunResult run(BenchDatabase db, TestBroker broker, Workload workload, Subject subject) throws Exception {
        db.truncate();
        // A slot (and relay name, and offsets) per workload and subject: no subject resumes from another's offsets.
        String slot = "bench_" + workload.prefix().replace("-", "") + "_" + subject.label().replaceAll("[^a-z0-9]+", "_");
        BenchRelay.declareTopology(broker);
        String stream = subject.stream(slot);
        try (Connection amqp = broker.newConnection(); com.rabbitmq.stream.Environment env = stream == null ? null : streams()) {
            if (stream != null) {
                // Made beforehand and empty: Debezium Server makes it only at its first event, too late for the consumer.
                if (env.streamExists(stream)) {
                    env.deleteStream(stream);
                }
                env.streamCreator().stream(stream).create();
            }
            java.util.concurrent.atomic.AtomicReference<Subject.Running> current = new java.util.concurrent.atomic.AtomicReference<>(subject.start(db, slot));
            Subject.Running running = current.get();
            try (LatencyConsumer consumer = stream == null ? LatencyConsumer.start(amqp, BenchRelay.QUEUE, subject::normalise)
                    : LatencyConsumer.startStream(env, stream, subject::normalise)) {
                workload.warmUp(db);
                if (!consumer.awaitIds(db.ids("warmup-"), Duration.ofMinutes(5))) {
                    System.out.println("  the warm-up events did not all arrive");
                }
                int warmUpDeliveries = consumer.count();
                double cpuBefore = cpu(running);
                double decoderBefore = decoderCpu(running);
                Thread killer = null;
                if (workload.killAfterSeconds() > 0) {
                    killer = new Thread(() -> {
                        try {
                            Thread.sleep(workload.killAfterSeconds() * 1000L);
                            current.set(current.get().killAndRestart());
                        }
                        catch (Exception e) {
                            System.out.println("  could not kill and restart " + subject.label() + ": " + e.getMessage());
                        }
                    }, "bench-killer");
                    killer.start();
                }
                Workload.Written written = workload.write(db);
                if (killer != null) {
                    killer.join();
                }
                Set<String> ids = db.ids(workload.prefix());
                if (!consumer.awaitIds(ids, Duration.ofMinutes(10))) {
                    System.out.println("  not everything arrived within 10 minutes");
                }
                Thread.sleep(1_000);
                // After a kill the process is another one: its CPU and memory say nothing of the run.
                boolean killed = current.get() != running;
                double cpu = killed ? Double.NaN : cpu(running) - cpuBefore;
                double decoder = killed ? Double.NaN : decoderCpu(running) - decoderBefore;
                long rss = 0;
                for (long pid : running.pids()) {
                    rss += killed ? 0 : ProcessUsage.peakRssBytes(pid);
                }
                List<Delivery> deliveries = consumer.deliveries();
                List<Long> arrivals = consumer.arrivals();
                deliveries = deliveries.subList(warmUpDeliveries, deliveries.size());
                arrivals = arrivals.subList(warmUpDeliveries, arrivals.size());
                Map<String, Long> firstArrival = new HashMap<>();
                for (int i = 0; i < deliveries.size(); i++) {
                    firstArrival.putIfAbsent(deliveries.get(i).getProperties().getMessageId(), arrivals.get(i));
                }
                long[] latencies = new long[firstArrival.size()];
                long last = written.firstCommitNanos();
                int i = 0;
                for (Map.Entry<String, Long> e : firstArrival.entrySet()) {
                    latencies[i++] = e.getValue() - written.commitOf(e.getKey());
                    last = Math.max(last, e.getValue());
                }
                if (latencyCsv != null) {
                    writeCsv(slot + "-" + subject.label().replace(' ', '-'), written, firstArrival);
                }
                DeliveryCheck check = DeliveryCheck.of(deliveries, ids);
                double seconds = (last - written.firstCommitNanos()) / 1e9;
                return new RunResult(workload.label(), subject.label(), ids.size(), written.committedPerSecond(), ids.size() / seconds, Percentiles.ofNanos(latencies),
                        check.duplicates(), check.lost(), check.orderViolations().size(), rss, cpu, running.startSeconds(), decoder * 1e6 / ids.size(),
                        perShard(deliveries, arrivals, written, running.pids().size()));
            }
            finally {
                current.get().close();
                db.dropSlot(slot);
                if (stream != null) {
                    env.deleteStream(stream);
                }
            }
        }
    }

    /** The subject's CPU while the outbox is quiet: heartbeats, lease renewals, gauges and the engine's own polling. */
    private String idle(BenchDatabase db, Subject subject) throws Exception {
        String slot = "bench_idle_" + subject.label().replaceAll("[^a-z0-9]+", "_");
        String stream = subject.stream(slot);
        try (com.rabbitmq.stream.Environment env = stream == null ? null : streams()) {
            if (stream != null && !env.streamExists(stream)) {
                env.streamCreator().stream(stream).create();
            }
            Subject.Running running = subject.start(db, slot);
            try {
                Thread.sleep(5_000);
                double before = cpu(running);
                Thread.sleep(idleSeconds * 1000L);
                double used = cpu(running) - before;
                return String.format("idle %d s through %-21s CPU %.2f s, %.1f %% of a core", idleSeconds, subject.label(), used,
                        100 * used / idleSeconds);
            }
            finally {
                running.close();
                db.dropSlot(slot);
                if (stream != null) {
                    env.deleteStream(stream);
                }
            }
        }
    }

    private static double cpu(Subject.Running running) throws java.io.IOException {
        double sum = 0;
        for (long pid : running.pids()) {
            sum += ProcessUsage.cpuSeconds(pid);
        }
        return sum;
    }

    /** CPU of Debezium's streaming thread in each process, summed: the decoding of every row. */
    private static double decoderCpu(Subject.Running running) throws java.io.IOException {
        double sum = 0;
        for (long pid : running.pids()) {
            sum += ProcessUsage.busiestThreadCpuSeconds(pid, "debezium-postgr");
        }
        return sum;
    }

    /** For several shards: each one's events and events per second over the run, told apart by the app-id the relay sets. */
    private static String perShard(List<Delivery> deliveries, List<Long> arrivals, Workload.Written written, int processes) {
        if (processes < 2) {
            return null;
        }
        Map<String, Integer> count = new java.util.TreeMap<>();
        Map<String, Long> last = new HashMap<>();
        Set<String> seen = new java.util.HashSet<>();
        for (int i = 0; i < deliveries.size(); i++) {
            Delivery d = deliveries.get(i);
            if (!seen.add(d.getProperties().getMessageId())) {
                continue;
            }
            String shard = String.valueOf(d.getProperties().getAppId());
            count.merge(shard, 1, Integer::sum);
            last.merge(shard, arrivals.get(i), Math::max);
        }
        StringBuilder sb = new StringBuilder("per shard:");
        count.forEach((shard, n) -> sb.append(String.format(" %s %d events, %.0f/s;", shard, n, n / ((last.get(shard) - written.firstCommitNanos()) / 1e9))));
        return sb.toString();
    }

    private static com.rabbitmq.stream.Environment streams() {
        io.outboxrelay.testing.TestServers.StreamEndpoint s = io.outboxrelay.testing.TestServers.streams();
        io.outboxrelay.testing.TestServers.RabbitEndpoint r = io.outboxrelay.testing.TestServers.rabbitMq();
        com.rabbitmq.stream.Address entry = new com.rabbitmq.stream.Address(s.host(), s.port());
        return com.rabbitmq.stream.Environment.builder().host(s.host()).port(s.port()).addressResolver(a -> entry)
                .username(r.user()).password(r.password()).build();
    }

    private void writeCsv(String name, Workload.Written written, Map<String, Long> firstArrival) throws java.io.IOException {
        java.nio.file.Files.createDirectories(latencyCsv);
        List<String> lines = new ArrayList<>();
        lines.add("commit_ms,latency_ms");
        firstArrival.entrySet().stream()
                .sorted(Map.Entry.comparingByValue())
                .forEach(e -> {
                    long commit = written.commitOf(e.getKey());
                    lines.add(String.format("%.3f,%.3f", (commit - written.firstCommitNanos()) / 1e6, (e.getValue() - commit) / 1e6));
                });
        java.nio.file.Files.write(latencyCsv.resolve(name + ".csv"), lines);
    }
}
