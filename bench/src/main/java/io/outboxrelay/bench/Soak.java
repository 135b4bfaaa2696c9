package io.outboxrelay.bench;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.function.IntSupplier;
import java.util.function.UnaryOperator;


import io.outboxrelay.testing.DeliveryCheck;
import io.outboxrelay.testing.MixedWriter;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ServerControl;
import io.outboxrelay.testing.StallingProxy;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestStreams;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "bench/soak.sh", mixinStandardHelpOptions = true,
        description = "Writes a steady load through the relay (a process of its own, with hot standbys beside it) for a while and injects "
                + "faults at random: the leader killed with SIGKILL (a standby takes over; a new standby is started in its place), RabbitMQ "
                + "restarted, the broker connection or the walsender cut, PostgreSQL restarted. With --mixed it writes every shape applications use "
                + "(batches, multi-row VALUES, COPY, …) from several sessions. With --stream it publishes into a RabbitMQ stream through a "
                + "proxy, whose connections are the ones cut. Prints each fault's recovery time, then losses (must be 0), duplicates (into a "
                + "stream: must be 0) and order. Exits 1 on a loss, an order violation or a duplicate in a stream.")
public final class Soak implements Callable<Integer> {

    enum Fault {
        KILL_LEADER, RESTART_RABBITMQ, CLOSE_BROKER_CONNECTION, TERMINATE_WALSENDER, RESTART_POSTGRES
    }

    @Option(names = "--minutes", defaultValue = "10", description = "How long the load runs (default ${DEFAULT-VALUE}).")
    double minutes;

    @Option(names = "--rate", defaultValue = "200", description = "Events per second (default ${DEFAULT-VALUE}).")
    int rate;

    @Option(names = "--fault-every", defaultValue = "30", description = "Mean seconds between faults (default ${DEFAULT-VALUE}).")
    int faultEvery;

    @Option(names = "--standbys", defaultValue = "1", description = "Hot standbys beside the leader (default ${DEFAULT-VALUE}; 0: the killed relay "
            + "is started again instead).")
    int standbys;

    @Option(names = "--seed", description = "Random seed, to repeat a sequence of faults (default: the clock).")
    Long seed;

    @Option(names = "--mixed", defaultValue = "0", paramLabel = "SESSIONS", description = "Write from SESSIONS sessions in every shape applications "
            + "use — single rows, batches, multi-row VALUES, COPY, rows beside another table's, logical messages — instead of single-row "
            + "transactions (default ${DEFAULT-VALUE}: single rows).")
    int mixedSessions;

    @Option(names = "--faults", split = ",", paramLabel = "FAULT", description = "The faults to draw from (default: all of ${COMPLETION-CANDIDATES}); "
            + "--faults KILL_LEADER with --standbys 0 is a storm of SIGKILLs at random moments.")
    List<Fault> faults = List.of(Fault.values());

    @Option(names = "--stream", description = "Publish into a RabbitMQ stream (the rabbitmqstream sink) instead of an exchange; the connection "
            + "fault then cuts every stream connection (TCP reset through a proxy), and the whole stream is read back at the end.")
    boolean stream;

    private record Injected(Fault fault, double atSeconds, long recoveryMillis) {
    }

    public static void main(String[] args) {
        System.exit(new CommandLine(new Soak()).execute(args));
    }

    @Override
    public Integer call() throws Exception {
        long actualSeed = seed != null ? seed : System.currentTimeMillis();
        Random random = new Random(actualSeed);
        BenchDatabase db = new BenchDatabase();
        db.recreate();
        TestBroker broker = new TestBroker();
        BenchRelay.declareTopology(broker);
        TestStreams streams = new TestStreams();
        String streamName = streams.uniqueName("soak", 0);
        try (com.rabbitmq.client.Connection amqp = broker.newConnection();
                StallingProxy proxy = stream ? StallingProxy.start(streams.server().host(), streams.server().port()) : null) {
            Map<String, String> config = BenchRelay.config(db, "soak");
            if (stream) {
                RelayFiles.intoStream(config, proxy.host(), proxy.port(), broker.server().user(), broker.server().password(), streamName);
            }
            config.put("relay.restart.backoff.initial.ms", "200");
            config.put("relay.restart.backoff.max.ms", "5000");
            List<RelayProcess> relays = new ArrayList<>();
            relays.add(BenchRelay.start(config).relay());
            for (int i = 0; i < standbys; i++) {
                relays.add(BenchRelay.start(config).relay());
            }
            List<Injected> injected = new ArrayList<>();
            int total = (int) (rate * minutes * 60);
            System.out.printf("soak: %s at %d/s into %s, a fault every ~%d s from %s, %d standby(s) (seed %d)%n",
                    mixedSessions > 0 ? minutes + " min of every write shape from " + mixedSessions + " sessions" : total + " single-row events",
                    rate, stream ? "stream " + streamName : "queue " + BenchRelay.QUEUE, faultEvery, faults, standbys, actualSeed);
            long start = System.nanoTime();
            long end = start + (long) (minutes * 60e9);
            try (LatencyConsumer consumer = stream ? null : LatencyConsumer.start(amqp, BenchRelay.QUEUE, true, UnaryOperator.identity());
                    TestStreams.Following following = stream ? streams.follow(streamName) : null;
                    OutboxWriter writer = mixedSessions > 0 ? null : OutboxWriter.start(db::connect, "outbox_event", "soak", 100, total, rate, Workload.PAYLOAD_BYTES);
                    MixedWriter mixed = mixedSessions > 0 ? MixedWriter.start(db::connect, "outbox_event", "soak", mixedSessions, rate, actualSeed) : null) {
                while (true) {
                    long pause = (long) (faultEvery * 1000 * (0.5 + random.nextDouble()));
                    if (writer != null ? writer.join(pause) : !sleepUntil(Math.min(end, System.nanoTime() + pause * 1_000_000), end)) {
                        break;
                    }
                    Fault fault = faults.get(random.nextInt(faults.size()));
                    double at = (System.nanoTime() - start) / 1e9;
                    IntSupplier arrived = stream ? following::count : consumer::count;
                    int before = arrived.getAsInt();
                    long faultStart = System.nanoTime();
                    inject(fault, relays, config, db, proxy);
                    long recovery = awaitDeliveries(arrived, before + Math.max(10, rate / 2), faultStart);
                    injected.add(new Injected(fault, at, recovery));
                    System.out.printf("  %7.1f s  %-24s recovered in %s%n", at, fault, recovery < 0 ? "(no new deliveries within 120 s)" : recovery + " ms");
                }
                if (mixed != null) {
                    mixed.close();
                    if (mixed.failure() != null) {
                        throw new IllegalStateException("a writer session failed: " + mixed.failure(), mixed.failure());
                    }
                    System.out.printf("events by shape: %s%n", mixed.eventsByShape());
                }
                Set<String> ids = db.ids("soak-");
                boolean all = true;
                DeliveryCheck check;
                if (stream) {
                    // Read again from the first message by a consumer of its own: the follower's own recoveries after a broker
                    // restart are not the relay's to answer for.
                    check = DeliveryCheck.ofStream(TestStreams.readAll(streams.environment(), streamName, ids.size(), Duration.ofSeconds(3),
                            Duration.ofMinutes(3)), ids);
                }
                else {
                    all = consumer.awaitIds(ids, Duration.ofMinutes(3));
                    Thread.sleep(2_000);
                    check = DeliveryCheck.of(consumer.deliveries(), ids);
                }
                System.out.println();
                System.out.printf("%-24s %6s %14s %14s%n", "fault", "count", "recovery max", "recovery mean");
                for (Fault f : Fault.values()) {
                    List<Long> times = injected.stream().filter(i -> i.fault() == f).map(Injected::recoveryMillis).toList();
                    if (!times.isEmpty()) {
                        System.out.printf("%-24s %6d %11d ms %11.0f ms%n", f, times.size(), times.stream().mapToLong(Long::longValue).max().orElse(0),
                                times.stream().mapToLong(Long::longValue).average().orElse(0));
                    }
                }
                System.out.printf("%nevents %d, lost %d, duplicates %d (%s), order violations %d, writer retries %d%s%n",
                        check.expected(), check.lost(), check.duplicates(), stream ? "in the stream" : "consumer redeliveries included",
                        check.orderViolations().size(), writer == null ? mixed.outages() : writer.retries(),
                        all ? "" : " — some events had not arrived after 3 minutes");
                return check.lost() == 0 && check.orderViolations().isEmpty() && (!stream || check.duplicates() == 0) ? 0 : 1;
            }
            finally {
                for (RelayProcess relay : relays) {
                    relay.close();
                }
                db.dropSlot("soak");
                streams.afterAll(null);
            }
        }
    }

    /** Injects {@code fault}; a killed leader is replaced in {@code relays} by a new process (a standby when others remain). */
    private static void inject(Fault fault, List<RelayProcess> relays, Map<String, String> config, BenchDatabase db, StallingProxy proxy)
            throws Exception {
        switch (fault) {
            case KILL_LEADER -> {
                RelayProcess leader = relays.stream().filter(r -> leads(r)).findFirst().orElse(relays.get(0));
                leader.kill();
                relays.remove(leader);
                relays.add(BenchRelay.start(config).relay());
            }
            case RESTART_RABBITMQ -> ServerControl.restartRabbitMq(Duration.ofSeconds(3));
            case CLOSE_BROKER_CONNECTION -> {
                if (proxy != null) {
                    proxy.cut();
                }
                else {
                    ServerControl.closeBrokerConnections("outbox-relay soak");
                }
            }
            case TERMINATE_WALSENDER -> {
                try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement(
                        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE slot_name = 'soak' AND active")) {
                    ps.execute();
                }
            }
            case RESTART_POSTGRES -> {
                ServerControl.stopPostgres();
                Thread.sleep(2_000);
                ServerControl.startPostgres();
            }
        }
    }

    private static boolean leads(RelayProcess relay) {
        try {
            return relay.gauge("outbox_relay_leader") == 1.0;
        }
        catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return false;
        }
    }

    /** Sleeps until {@code until}; false when that was the end of the run. */
    private static boolean sleepUntil(long until, long end) throws InterruptedException {
        long left = until - System.nanoTime();
        if (left > 0) {
            Thread.sleep(left / 1_000_000);
        }
        return System.nanoTime() < end;
    }

    /** Milliseconds from the fault's start until {@code count} deliveries have arrived, or -1 after 120 s. */
    private static long awaitDeliveries(IntSupplier arrived, int count, long since) throws InterruptedException {
        long deadline = since + Duration.ofSeconds(120).toNanos();
        while (arrived.getAsInt() < count) {
            if (System.nanoTime() > deadline) {
                return -1;
            }
            Thread.sleep(20);
        }
        return (System.nanoTime() - since) / 1_000_000;
    }
}
