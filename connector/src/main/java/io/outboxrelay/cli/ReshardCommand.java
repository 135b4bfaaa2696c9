package io.outboxrelay.cli;

import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;

import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.RelaySettings;
import io.outboxrelay.logging.ConsoleLogFormat;
import io.outboxrelay.offsetstore.PostgresOffsetStoreConfig;
import io.outboxrelay.source.Lsns;
import io.outboxrelay.source.OutboxPublication;
import io.outboxrelay.source.ReplicationSlots;
import io.outboxrelay.config.ShardFilter;
import io.outboxrelay.source.ShardSets;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * Changes the number of shards without losing or reordering an event, in two steps around the
 * moment the old relays are stopped:
 * <ol>
 * <li>{@code --to M}: makes the new set's publications and slots while the old set runs on (from
 * then on the new slots keep every event for the new set), then waits until every old slot has
 * confirmed the WAL position reached after the last new slot was made: the old set has delivered
 * everything committed before the new set begins.</li>
 * <li>The operator stops the old relays (and their standbys).</li>
 * <li>{@code --to M --finish}: checks the old slots are idle and caught up, moves each new slot on
 * to the oldest position the old set confirmed ({@code pg_replication_slot_advance}: what the old set
 * delivered is not delivered again, but for the few events between the old slots' positions), and
 * drops the old slots, publications and offsets. The new relays then start.</li>
 * </ol>
 * Each aggregate's events reach consumers in order: the new set starts only after the old one has
 * stopped, and begins no later than where the old set ended.
 */
@Command(name = "reshard", mixinStandardHelpOptions = true,
        description = { "Changes the number of shards of relay.name without losing or reordering events: run it with --to M while the old relays run,",
                "stop them when it says so, run it again with --finish, then start M relays with relay.shard.count=M." })
final class ReshardCommand implements Callable<Integer> {

    static final int EXIT_NOT_READY = 3;

    @Mixin
    ConfigOptions options;

    @Option(names = "--to", required = true, paramLabel = "M", description = "The new number of shards (1: back to one relay).")
    int to;

    @Option(names = "--finish", description = "After the old relays are stopped: hand over to the new set and remove the old one.")
    boolean finish;

    @Option(names = "--wait", defaultValue = "300", paramLabel = "SECONDS",
            description = "How long --to waits for the old set to deliver up to the new slots (default ${DEFAULT-VALUE}).")
    int waitSeconds;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        ConsoleLogFormat.auditRefusalsOnly();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        RelayConfig config = options.load(err);
        if (config == null) {
            return ConfigOptions.EXIT_CONFIG;
        }
        if (to < 1 || to > 64) {
            err.println("reshard: --to " + to + " is outside 1..64 (relay.shard.count)");
            return ConfigOptions.EXIT_CONFIG;
        }
        String base = config.relay().shard().baseName();
        PostgresOffsetStoreConfig store = config.offsetStore();
        try (Connection offsets = store.connect("outbox-relay reshard", Duration.ofSeconds(60));
                Connection source = config.database().connect("outbox-relay reshard")) {
            List<String> old = ShardSets.foreign(offsets, store.table(), base, to);
            if (old.isEmpty()) {
                out.println("relay '" + base + "' has no stored offsets of another number of shards: nothing to hand over; start "
                        + to + " relay(s) with relay.shard.count=" + to);
                out.flush();
                return 0;
            }
            List<String> newSlots = new ArrayList<>();
            for (int k = 0; k < to; k++) {
                newSlots.add(RelayConfig.identifier(RelaySettings.Shard.name(base, k, to)));
            }
            List<String> oldSlots = old.stream().map(RelayConfig::identifier).toList();
            ReplicationSlots slots = new ReplicationSlots(source);
            return finish ? finish(out, err, offsets, store, slots, old, oldSlots, newSlots) : prepare(out, err, config, slots, oldSlots, newSlots);
        }
        catch (SQLException e) {
            err.println("reshard: " + e.getMessage());
            err.flush();
            return StatusCommand.EXIT_UNREACHABLE;
        }
    }

    private int prepare(PrintWriter out, PrintWriter err, RelayConfig config, ReplicationSlots slots, List<String> oldSlots, List<String> newSlots)
            throws SQLException, InterruptedException {
        String key = config.routerSetting("table.field.event.key", "aggregateid");
        String base = config.relay().shard().baseName();
        for (int k = 0; k < to; k++) {
            ShardFilter filter = to == 1 ? null : new ShardFilter(key, k, to);
            String name = newSlots.get(k);
            new OutboxPublication(config.database(), name, config.outboxTables(), config.publicationColumns(), filter).prepare();
            if (slots.position(name) == null) {
                slots.create(name);
                out.println("made slot " + name + " and its publication for " + (to == 1 ? "the whole outbox" : "shard " + k + " of " + to));
            }
        }
        String cut = slots.currentWal();
        out.println("the new slots keep every event from " + cut + " on; waiting for the old relays to deliver up to it: " + String.join(", ", oldSlots));
        out.flush();
        long deadline = System.nanoTime() + Duration.ofSeconds(waitSeconds).toNanos();
        while (true) {
            List<String> behind = slots.behind(oldSlots, cut);
            if (behind.isEmpty()) {
                break;
            }
            if (System.nanoTime() > deadline) {
                err.println("reshard: after " + waitSeconds + " s these old slots have not confirmed " + cut + ": " + String.join(", ", behind)
                        + ". Are the old relays running? Run this again once they are (the new slots stay as they are)");
                err.flush();
                return EXIT_NOT_READY;
            }
            Thread.sleep(500);
        }
        out.println("the old relays have delivered everything committed before " + cut + ".");
        out.println("next: stop every relay of '" + base + "' (and its standbys), then run: outbox-relay reshard --to " + to + " --finish");
        out.flush();
        return 0;
    }

    private int finish(PrintWriter out, PrintWriter err, Connection offsets, PostgresOffsetStoreConfig store, ReplicationSlots slots, List<String> old,
                       List<String> oldSlots, List<String> newSlots) throws SQLException {
        String start = null;
        for (String slot : newSlots) {
            ReplicationSlots.Position p = slots.position(slot);
            if (p == null) {
                err.println("reshard: slot " + slot + " does not exist: run reshard --to " + to + " (without --finish) first, while the old relays run");
                err.flush();
                return EXIT_NOT_READY;
            }
            start = start == null || lsnAfter(p.confirmed(), start) ? p.confirmed() : start;
        }
        String oldest = null;
        boolean resumed = false;
        Map<String, String> confirmed = new HashMap<>();
        for (String slot : oldSlots) {
            ReplicationSlots.Position p = slots.position(slot);
            if (p == null) {
                // Its offsets are still here, so an earlier --finish dropped it: that run had advanced the new slots first.
                resumed = true;
                continue;
            }
            confirmed.put(slot, p.confirmed());
            if (p.active()) {
                err.println("reshard: slot " + slot + " is still read by a running relay (walsender PID " + p.pid() + "): stop the old relays and their "
                        + "standbys first");
                err.flush();
                return EXIT_NOT_READY;
            }
            oldest = oldest == null || lsnAfter(oldest, p.confirmed()) ? p.confirmed() : oldest;
        }
        if (oldest != null && lsnAfter(start, oldest)) {
            err.println("reshard: the old relays stopped at " + oldest + ", before the new slots begin (" + start + "): events between would be lost. "
                    + "Start the old relays again and run reshard --to " + to + " until it says they have delivered");
            err.flush();
            return EXIT_NOT_READY;
        }
        if (resumed) {
            // The oldest of the old slots that are left is later than the one already dropped: advancing to it would skip what that
            // shard had not delivered. The new slots begin where the earlier run put them.
            out.println("an earlier reshard --finish stopped part-way; the new slots already begin at " + start + ", where it put them");
        }
        else if (oldest != null) {
            for (String slot : newSlots) {
                // What the old set confirmed is not decoded for the new one: only the spread between the old slots is published twice.
                slots.advance(slot, oldest);
            }
            out.println("the new slots begin at " + oldest + ", where the old relays' slowest shard stopped");
        }
        // The slowest last: should this run stop part-way, the slots left still hold the position the new slots begin at.
        List<String> dropOrder = new ArrayList<>(oldSlots);
        dropOrder.sort(Comparator.comparingLong((String slot) -> confirmed.get(slot) == null ? Long.MAX_VALUE : Lsns.parse(confirmed.get(slot)))
                .reversed());
        for (String slot : dropOrder) {
            slots.drop(slot);
        }
        ShardSets.forget(offsets, store.table(), old);
        out.println("removed the old slots, publications and offsets: " + String.join(", ", oldSlots));
        out.println("next: start " + to + " relay(s) with relay.shard.count=" + to + (to > 1 ? " and relay.shard.index 0.." + (to - 1) : ""));
        out.flush();
        return 0;
    }

    /** Whether LSN {@code a} is after {@code b} (both in PostgreSQL's X/Y notation). */
    static boolean lsnAfter(String a, String b) {
        return Lsns.after(Lsns.parse(a), Lsns.parse(b));
    }
}
