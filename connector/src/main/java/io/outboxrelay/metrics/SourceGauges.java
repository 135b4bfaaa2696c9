package io.outboxrelay.metrics;

import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.RelaySettings;
import io.outboxrelay.source.SlotStatus;
import io.outboxrelay.source.SourceInspector;
import io.outboxrelay.source.StoredOffset;
import io.outboxrelay.offsetstore.PostgresOffsetBackingStore;

/**
 * Gauges that need a query: the slot's lag and retained WAL, the stored offset, the dead-letter
 * backlog. Polled on their own thread every {@code relay.metrics.poll.ms}, so a scrape never waits
 * on PostgreSQL and a slow database never slows the stream; a failed poll leaves the last values
 * and counts an error.
 */
public final class SourceGauges implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(SourceGauges.class);

    private final RelayConfig config;
    private final SourceInspector inspector;
    private final ScheduledExecutorService poller = Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "outbox-relay-source-gauges");
        t.setDaemon(true);
        return t;
    });
    private volatile double lagBytes = Double.NaN;
    private volatile double retainedBytes = Double.NaN;
    private volatile double slotActive = Double.NaN;
    private volatile double storedLsn = Double.NaN;
    private volatile double storedCommitSeconds = Double.NaN;
    private volatile double deadLetters = Double.NaN;
    private volatile double heldAggregates = Double.NaN;
    private volatile boolean lastPollFailed;
    /** Set by {@link #close}: a poll it interrupts fails, and that is no news to log after the relay said it stopped. */
    private volatile boolean closed;

    public SourceGauges(RelayConfig config, RelayMetrics metrics) {
        this.config = config;
        this.inspector = new SourceInspector(config.database());
        metrics.gauge("outbox.relay.slot.lag.bytes", "WAL written since the slot's confirmed flush position", () -> lagBytes);
        metrics.gauge("outbox.relay.slot.retained.wal.bytes", "WAL PostgreSQL keeps for the relay's slot", () -> retainedBytes);
        metrics.gauge("outbox.relay.slot.active", "1 while a walsender streams from the slot", () -> slotActive);
        metrics.gauge("outbox.relay.offset.lsn", "The LSN of the last stored offset", () -> storedLsn);
        metrics.gauge("outbox.relay.offset.commit.timestamp.seconds", "Commit time of the transaction the stored offset points at", () -> storedCommitSeconds);
        metrics.gauge("outbox.relay.dead.letters", "Rows in the dead-letter table not yet re-driven", () -> deadLetters);
        metrics.gauge("outbox.relay.dead.letter.held.aggregates",
                "Aggregates whose later events are parked behind an event not yet re-driven (relay.dead-letter.order=keep-aggregate)", () -> heldAggregates);
        metrics.gauge("outbox.relay.source.poll.failing", "1 while the last query for these gauges failed", () -> lastPollFailed ? 1 : 0);
    }

    public void start(Duration interval) {
        poller.scheduleWithFixedDelay(this::poll, 0, interval.toMillis(), TimeUnit.MILLISECONDS);
    }

    void poll() {
        try {
            SlotStatus slot = inspector.slot(config.slotName());
            lagBytes = slot == null ? Double.NaN : slot.lagBytes();
            retainedBytes = slot == null ? Double.NaN : slot.retainedBytes();
            slotActive = slot == null ? 0 : slot.active() ? 1 : 0;
            SourceInspector.DeadLetterBacklog backlog = inspector.parkedDeadLetters(config.relay().deadLetterTable(), config.name());
            deadLetters = backlog.events();
            heldAggregates = config.relay().deadLetterOrder() == RelaySettings.DeadLetterOrder.KEEP_AGGREGATE ? backlog.aggregates() : 0;
            if (PostgresOffsetBackingStore.class.getName().equals(config.engineProperties().getProperty("offset.storage"))) {
                StoredOffset offset = StoredOffset.of(config);
                if (offset != null) {
                    storedLsn = offset.lsn();
                    storedCommitSeconds = offset.commitMicros() / 1_000_000.0;
                }
            }
            if (lastPollFailed) {
                LOG.info("Source metrics queries work again");
            }
            lastPollFailed = false;
        }
        catch (Exception e) {
            if (closed) {
                return;
            }
            if (!lastPollFailed) {
                LOG.warn("Cannot query the slot and dead-letter metrics ({}); retrying every poll", e.getMessage());
            }
            lastPollFailed = true;
        }
    }

    @Override
    public void close() {
        closed = true;
        poller.shutdownNow();
        inspector.close();
    }
}
