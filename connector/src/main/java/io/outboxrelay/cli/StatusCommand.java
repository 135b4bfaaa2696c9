package io.outboxrelay.cli;

import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;

import io.outboxrelay.logging.ConsoleLogFormat;
import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.RelaySettings;
import io.outboxrelay.source.SlotStatus;
import io.outboxrelay.source.SourceInspector;
import io.outboxrelay.source.StoredOffset;
import io.outboxrelay.offsetstore.LeaseTable;
import io.outboxrelay.offsetstore.PostgresOffsetBackingStore;
import io.outboxrelay.offsetstore.StoredOffsets;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "status", mixinStandardHelpOptions = true,
        description = "Prints the relay's replication slot (whether a relay is connected, its lag and retained WAL), the stored offset "
                + "and the dead-letter backlog; exits 1 when the slot does not exist, 3 when PostgreSQL cannot be queried.")
final class StatusCommand implements Callable<Integer> {

    static final int EXIT_UNREACHABLE = 3;

    @Mixin
    ConfigOptions options;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        ConsoleLogFormat.auditRefusalsOnly();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        RelayConfig config = options.load(err);
        if (config == null) {
            return ConfigOptions.EXIT_CONFIG;
        }
        try (SourceInspector inspector = new SourceInspector(config.database())) {
            SlotStatus slot = inspector.slot(config.slotName());
            out.printf("relay          %s (database %s)%n", config.name(), config.database());
            if (config.relay().shard().sharded()) {
                out.printf("shard          %d of %d: the aggregates where %s%n", config.relay().shard().index(), config.relay().shard().count(),
                        config.shardFilter().expression());
            }
            if (slot == null) {
                out.printf("slot           %s does not exist: the relay has not run yet, or the slot was dropped%n", config.slotName());
            }
            else {
                out.printf("slot           %s, wal_status %s%n", slot.name(), slot.walStatus());
                out.printf("connected      %s%n", slot.active()
                        ? "yes, by " + slot.holder()
                        : "no relay is streaming from the slot");
                out.printf("lag            %s behind the server (confirmed_flush_lsn %s)%n", bytes(slot.lagBytes()), slot.confirmedFlushLsn());
                out.printf("retained WAL   %s (restart_lsn %s)%n", bytes(slot.retainedBytes()), slot.restartLsn());
            }
            leadership(config, out);
            out.printf("stored offset  %s%n", storedOffset(config));
            SourceInspector.DeadLetterBacklog backlog = inspector.parkedDeadLetters(config.relay().deadLetterTable(), config.name());
            out.printf("dead letters   %d parked in %s%n", backlog.events(), config.relay().deadLetterTable());
            if (config.relay().deadLetterOrder() == RelaySettings.DeadLetterOrder.KEEP_AGGREGATE && backlog.aggregates() > 0) {
                out.printf("held           %d aggregate(s) wait behind a parked event, the oldest %s behind %s (redrive, or redrive --discard --id)%n",
                        backlog.aggregates(), backlog.oldestAggregate(), backlog.oldestEventId());
            }
            out.flush();
            return slot == null ? 1 : 0;
        }
        catch (SQLException e) {
            err.println("status: cannot query PostgreSQL at " + config.database().jdbcUrl() + " (debezium.source.database.*): " + e.getMessage());
            err.flush();
            return EXIT_UNREACHABLE;
        }
    }

    /** Who holds the lease and who stands by, from the lease table (relay.standby). */
    private static void leadership(RelayConfig config, PrintWriter out) throws SQLException {
        if (!config.relay().leadership().standby()) {
            out.printf("leader         no lease (relay.standby=false): one relay at a time%n");
            return;
        }
        LeaseTable table = new LeaseTable(config.relay().leadership().table());
        try (Connection c = config.offsetStore().connect("outbox-relay status", config.offsetStore().socketTimeout())) {
            Optional<LeaseTable.Lease> lease;
            List<LeaseTable.Member> members;
            try {
                lease = table.read(c, config.name());
                members = table.members(c, config.name(), config.relay().leadership().lease());
            }
            catch (SQLException e) {
                if ("42P01".equals(e.getSQLState())) {
                    out.printf("leader         none: the lease table %s does not exist yet (no relay has run)%n", table.table());
                    return;
                }
                throw e;
            }
            Instant now = Instant.now();
            if (lease.isEmpty()) {
                out.printf("leader         none yet%n");
            }
            else {
                LeaseTable.Lease l = lease.get();
                out.printf("leader         %s%n", l.expired()
                        ? "none: the lease of " + l.host() + " pid " + l.pid() + " (epoch " + l.epoch() + ") has lapsed"
                        : l.host() + " pid " + l.pid() + ", epoch " + l.epoch() + ", since " + l.acquiredAt() + ", renewed " + ago(l.renewedAt(), now));
            }
            List<String> standbys = members.stream().filter(m -> m.role().equals("standby"))
                    .map(m -> m.host() + " pid " + m.pid() + " (seen " + ago(m.seenAt(), now) + ")").toList();
            out.printf("standbys       %s%n", standbys.isEmpty() ? "none" : String.join(", ", standbys));
        }
    }

    private static String ago(Instant then, Instant now) {
        return String.format("%.1f s ago", Math.max(0, Duration.between(then, now).toMillis()) / 1000.0);
    }

    private static String storedOffset(RelayConfig config) throws SQLException {
        if (!PostgresOffsetBackingStore.class.getName().equals(config.engineProperties().getProperty("offset.storage"))) {
            return "kept by " + config.engineProperties().getProperty("offset.storage") + " (not shown)";
        }
        @SuppressWarnings({ "unchecked", "rawtypes" })
        Map<String, ?> engine = (Map) config.engineProperties();
        StoredOffset offset = StoredOffset.of(config);
        if (offset == null) {
            return "none yet in " + StoredOffsets.table(engine);
        }
        String committed = offset.commitTime() != null ? ", source commit " + offset.commitTime() : "";
        return "lsn " + offset.lsnText() + committed + " (table " + StoredOffsets.table(engine) + ")";
    }

    private static String bytes(long n) {
        if (n < 1024) {
            return n + " B";
        }
        String[] units = { "KiB", "MiB", "GiB", "TiB" };
        double v = n;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format("%.1f %s", v, units[u]);
    }
}
