package io.outboxrelay.engine;

import java.io.IOException;
import java.sql.SQLException;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.TimeoutException;

import org.apache.kafka.connect.source.SourceRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.rabbitmq.client.Connection;

import io.debezium.embedded.Connect;
import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.outboxrelay.audit.ConnectionAudit;
import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.RelaySettings;
import io.outboxrelay.deadletter.DeadLetterTable;
import io.outboxrelay.leadership.Leadership;
import io.outboxrelay.leadership.LeaseKeeper;
import io.outboxrelay.offsetstore.PostgresOffsetStoreConfig;
import io.outboxrelay.metrics.RelayMetrics;
import io.outboxrelay.metrics.RelayState;
import io.outboxrelay.source.OutboxPublication;
import io.outboxrelay.source.ResumeCheck;
import io.outboxrelay.source.SlotStatus;
import io.outboxrelay.source.RoutingColumns;
import io.outboxrelay.source.SourceInspector;
import io.outboxrelay.sink.amqp.AmqpConnectionFactory;
import io.outboxrelay.sink.PublishPermit;
import io.outboxrelay.sink.RabbitMqChangeConsumer;
import io.outboxrelay.sink.TransportFactory;
import io.outboxrelay.sink.amqp.AmqpTransport;
import io.outboxrelay.sink.stream.StreamTransport;
import io.outboxrelay.sink.stream.StreamEnvironments;
import io.outboxrelay.sink.stream.StreamProducerClaim;
import io.outboxrelay.source.StoredOffset;
import io.outboxrelay.source.ShardSets;
import io.outboxrelay.offsetstore.StoredOffsets;
import io.outboxrelay.config.StreamSinkConfig;
import com.rabbitmq.stream.Environment;

/**
 * Runs the Debezium engine with the RabbitMQ sink and keeps it running: when the engine stops with
 * an error (PostgreSQL restarted, the slot busy, the broker gone) it is rebuilt and started again
 * with back-off, resuming from the stored offset. {@link #stop()} drains in-flight confirms and
 * lets the engine flush its offsets, within {@code relay.shutdown.grace.ms}.
 *
 * With {@code relay.standby} (the default) an engine runs only while this process holds the lease
 * ({@link Leadership}); each engine is started with the lease's epoch, which fences its offset
 * writes, and is stopped without publishing more as soon as the lease is lost. A relay that stops
 * gracefully gives its lease up after the engine flushed its offsets, so a standby takes over from
 * exactly there.
 */
public final class EngineSupervisor implements Health, RelayState {

    private static final Logger LOG = LoggerFactory.getLogger(EngineSupervisor.class);
    /** An engine that ran this long before failing was healthy; its failure restarts the back-off. */
    private static final Duration HEALTHY_RUN = Duration.ofMinutes(1);
    private static final Duration SLOT_RELEASE_WAIT = Duration.ofSeconds(10);
    /** How long a relay that lost its lease waits for its engine to stop before leaving it behind. */
    private static final Duration STEP_DOWN_WAIT = Duration.ofSeconds(10);
    private static final Duration STANDBY_BROKER_CHECK = Duration.ofMinutes(5);

    private final RelayConfig config;
    private final RelayMetrics metrics;
    private final CompletableFuture<Void> stopped = new CompletableFuture<>();
    private volatile boolean stopping;
    /** Whether the held aggregates found at the first start were told of. */
    private boolean warnedOfHeld;
    private volatile DebeziumEngine<ChangeEvent<SourceRecord, SourceRecord>> engine;
    private volatile RabbitMqChangeConsumer consumer;
    private volatile int restarts;
    private volatile boolean streaming;
    private volatile String lastFailure;
    private final StreamingConnection stream;
    private final Leadership leadership;
    private volatile LeaseKeeper keeper;
    private volatile String standbyBrokerFailure;
    private long nextBrokerCheckNanos;

    public EngineSupervisor(RelayConfig config, RelayMetrics metrics) {
        this.config = config;
        this.metrics = metrics;
        this.stream = new StreamingConnection(config.engineProperties().getProperty("topic.prefix"));
        this.leadership = new Leadership(config.name(), config.relay().leadership().lease(), config.relay().leadership().publishFor());
        // The engine must not go on a moment longer than the lease: closed from a thread of its own, the broker dropped first.
        leadership.onLost(epoch -> stopEngineNow());
    }

    /**
     * Runs until {@link #stop()}; returns after the last engine has closed.
     *
     * @throws SlotInUseException before starting anything, when another process streams from the slot
     * @throws StartRefusedException before starting anything, when the relay name has run as a set of another number of shards, or
     *                               another relay publishes under its stream producer name
     */
    public void run() throws InterruptedException {
        String refusal = startRefusal();
        if (refusal != null) {
            stopped.complete(null);
            throw new StartRefusedException(refusal);
        }
        boolean standby = config.relay().leadership().standby();
        if (!standby) {
            try {
                refuseIfSlotInUse();
            }
            catch (SlotInUseException e) {
                stopped.complete(null);
                throw e;
            }
        }
        Duration backoff = config.relay().restartBackoffInitial();
        try (DeadLetterTable deadLetters = new DeadLetterTable(config.database(), config.relay().deadLetterTable(), config.name())) {
            if (standby) {
                startKeeper();
            }
            while (!stopping) {
                long epoch = -1;
                if (standby) {
                    // Only now, with no engine of an earlier lease still winding down, may the keeper take the lease.
                    leadership.contend(true);
                    while (!stopping && epoch < 0) {
                        checkBrokerIfDue();
                        epoch = leadership.awaitLeader(() -> stopping, STANDBY_BROKER_CHECK);
                    }
                    leadership.contend(false);
                    if (epoch < 0) {
                        break;
                    }
                    freeSlot();
                }
                long started = System.nanoTime();
                String failure = runOnce(deadLetters, epoch);
                if (stopping) {
                    break;
                }
                if (standby && !leadership.leads(epoch)) {
                    // Stepped down (the lease was lost): no back-off, the keeper looks for the lease again.
                    lastFailure = "stepped down: " + failure;
                    continue;
                }
                if (System.nanoTime() - started > HEALTHY_RUN.toNanos()) {
                    backoff = config.relay().restartBackoffInitial();
                }
                restarts++;
                lastFailure = failure;
                metrics.engineRestarted();
                LOG.error("{}; restarting in {} ms", failure, backoff.toMillis());
                sleepUnlessStopping(backoff);
                backoff = doubled(backoff);
            }
        }
        finally {
            LeaseKeeper k = keeper;
            if (k != null) {
                k.close();
            }
            stopped.complete(null);
        }
    }

    /** The next pause: twice this one, at most {@code relay.restart.backoff.max.ms}. */
    private Duration doubled(Duration backoff) {
        Duration doubled = backoff.multipliedBy(2);
        return doubled.compareTo(config.relay().restartBackoffMax()) > 0 ? config.relay().restartBackoffMax() : doubled;
    }

    /** Prepares the lease table, retrying with back-off while PostgreSQL cannot be reached, and starts contending. */
    private void startKeeper() throws InterruptedException {
        LeaseKeeper k = new LeaseKeeper(config.offsetStore(), config.database(), config.relay().leadership(), config.name(), config.slotName(), leadership);
        Duration backoff = config.relay().restartBackoffInitial();
        while (!stopping) {
            try {
                k.prepare();
                break;
            }
            catch (SQLException e) {
                lastFailure = e.getMessage();
                LOG.error("{}; retrying in {} ms", e.getMessage(), backoff.toMillis());
                sleepUnlessStopping(backoff);
                backoff = doubled(backoff);
            }
        }
        if (!stopping) {
            keeper = k;
            k.start();
        }
    }

    /**
     * A new leader's slot may still be held by the walsender of a leader that froze or was cut off.
     * With {@code relay.leader.walsender.timeout.ms} PostgreSQL ends that walsender by itself, that
     * long after its relay last answered, and usually has by the time the lease is taken. Terminating
     * it would be worse: a terminated walsender first writes its farewell to its client, and blocks
     * on that write for as long as a frozen client's socket buffers stay full — until the client
     * wakes. So this waits out the time-out, and terminates only a holder that outlived it: one whose
     * relay still answers (one started without the time-out, or one stepping down), and so reads.
     */
    private void freeSlot() throws InterruptedException {
        Duration timeout = config.relay().leadership().walsenderTimeout();
        try (SourceInspector inspector = new SourceInspector(config.database())) {
            SlotStatus slot = inspector.slot(config.slotName());
            if (slot == null || !slot.active()) {
                return;
            }
            if (!timeout.isZero()) {
                LOG.info("Slot {} is still held by {}, left by the previous leader; PostgreSQL ends it within relay.leader.walsender.timeout.ms={}"
                        + " of that relay's last answer", slot.name(), slot.holder(), timeout.toMillis());
                long deadline = System.nanoTime() + timeout.plus(SLOT_RELEASE_WAIT).toNanos();
                while (slot != null && slot.active() && !stopping && System.nanoTime() - deadline < 0) {
                    Thread.sleep(250);
                    slot = inspector.slot(config.slotName());
                }
                if (slot == null || !slot.active() || stopping) {
                    return;
                }
            }
            LOG.warn("Slot {} is still held by {}, left by the previous leader, which still answers PostgreSQL; terminating it", slot.name(), slot.holder());
            inspector.terminateSlotHolder(config.slotName());
        }
        catch (SQLException e) {
            LOG.debug("Cannot free slot {} before starting: {}", config.slotName(), e.getMessage());
        }
    }

    /**
     * A standby checks RabbitMQ when it starts standing by and every {@link #STANDBY_BROKER_CHECK}
     * after: one that could not publish should not look ready to take over.
     */
    private void checkBrokerIfDue() {
        if (System.nanoTime() - nextBrokerCheckNanos < 0) {
            return;
        }
        nextBrokerCheckNanos = System.nanoTime() + STANDBY_BROKER_CHECK.toNanos();
        if (config.streams()) {
            try (Environment e = StreamEnvironments.open(config.stream(), "outbox-relay standby check")) {
                brokerAnswers();
            }
            catch (RuntimeException e) {
                brokerFails(StreamEnvironments.explain(config.stream(), e));
            }
            return;
        }
        try (Connection c = ConnectionAudit.openBroker(AmqpConnectionFactory.forSink(config.sink()), "outbox-relay standby check")) {
            brokerAnswers();
        }
        catch (IOException | TimeoutException | RuntimeException e) {
            brokerFails("RabbitMQ (debezium.sink.rabbitmq.connection.*): " + rootMessage(e));
        }
    }

    private void brokerAnswers() {
        if (standbyBrokerFailure != null) {
            LOG.info("RabbitMQ answers the standby again");
        }
        standbyBrokerFailure = null;
    }

    private void brokerFails(String why) {
        standbyBrokerFailure = "standby cannot reach " + why;
        LOG.error("{}; checking again in {} s", standbyBrokerFailure, STANDBY_BROKER_CHECK.toSeconds());
    }

    /** Stops the running engine at once, without draining: this process may not publish any more. */
    private void stopEngineNow() {
        Thread closer = new Thread(() -> {
            RabbitMqChangeConsumer sink = consumer;
            if (sink != null) {
                sink.abortBroker();
            }
            closeQuietly(engine);
        }, "outbox-relay-step-down");
        closer.setDaemon(true);
        closer.start();
    }

    /**
     * A slot streams to one reader: a second relay on it would fight the first over its position.
     * A predecessor that was just killed may hold it for a moment, until PostgreSQL notices its
     * connection is gone, so this waits briefly before refusing.
     */
    private void refuseIfSlotInUse() throws InterruptedException {
        try (SourceInspector inspector = new SourceInspector(config.database())) {
            long deadline = System.nanoTime() + SLOT_RELEASE_WAIT.toNanos();
            SlotStatus slot = inspector.slot(config.slotName());
            while (slot != null && slot.active() && System.nanoTime() < deadline && !stopping) {
                Thread.sleep(250);
                slot = inspector.slot(config.slotName());
            }
            if (slot != null && slot.active()) {
                throw new SlotInUseException("replication slot " + slot.name() + " is in use by another process, " + slot.holder()
                        + ": another relay with relay.name=" + config.name()
                        + " is already running against " + config.database() + ". Refusing to start a second one; stop the other relay,"
                        + " or give this one its own relay.name (and so its own slot)");
            }
        }
        catch (SQLException e) {
            // PostgreSQL is not reachable yet: the engine's start reports that and is retried with back-off.
            LOG.debug("Cannot check slot {} before starting: {}", config.slotName(), e.getMessage());
        }
    }

    /**
     * Why this relay may not start: its router's templates name a column the outbox table lacks, it
     * would run beside the sets of shards its name has already run as, or under a stream producer name
     * another relay numbers with; null when it may.
     */
    private String startRefusal() {
        String routing = routingProblem();
        if (routing != null) {
            return routing;
        }
        try {
            String otherShards = ShardSets.conflict(config, "outbox-relay shard check");
            return otherShards != null ? otherShards : StreamProducerClaim.claim(config, "outbox-relay producer check");
        }
        catch (SQLException e) {
            // The offset store is not reachable yet: the engine's start reports that and is retried with back-off.
            LOG.debug("Cannot look for other shard sets or stream producers: {}", e.getMessage());
            return null;
        }
    }

    /**
     * A template column the outbox table lacks, or null. Asked on its own connection and apart from the shard and producer
     * checks, so that a source database not reachable yet never skips the producer claim.
     */
    private String routingProblem() {
        try (SourceInspector inspector = new SourceInspector(config.database(), "outbox-relay routing check")) {
            return RoutingColumns.problem(config, inspector);
        }
        catch (SQLException e) {
            // The source is not reachable yet: the engine's start reports that and is retried with back-off.
            LOG.debug("Cannot check the outbox table's columns for the router's templates: {}", e.getMessage());
            return null;
        }
    }

    /** Runs one engine to its end; returns why it ended. */
    /**
     * Once per process: events parked earlier (an earlier version parked without holding their
     * aggregates) now hold their aggregates, which an operator should hear of before events wait.
     */
    private void warnOfHeldAggregates(DeadLetterTable deadLetters) throws SQLException {
        if (warnedOfHeld || config.relay().deadLetterOrder() != RelaySettings.DeadLetterOrder.KEEP_AGGREGATE) {
            return;
        }
        warnedOfHeld = true;
        long held = deadLetters.heldAggregates();
        if (held > 0) {
            LOG.warn("{} aggregate(s) have events parked in {} and not re-driven: with relay.dead-letter.order=keep-aggregate their later events "
                    + "are parked behind them, in order, until `redrive` (or `redrive --discard --id`) releases them; relay.dead-letter.order=none "
                    + "delivers them regardless", held, deadLetters.table());
        }
    }

    @SuppressWarnings({ "unchecked", "rawtypes" })
    private String runOnce(DeadLetterTable deadLetters, long epoch) {
        try {
            deadLetters.createIfMissing();
            warnOfHeldAggregates(deadLetters);
        }
        catch (SQLException e) {
            return "cannot prepare dead-letter table " + deadLetters.table() + " in " + config.database().jdbcUrl() + " (relay.dead-letter.table): " + e.getMessage();
        }
        String refusal = startRefusal();
        if (refusal != null) {
            return refusal;
        }
        if ("filtered".equalsIgnoreCase(config.engineProperties().getProperty("publication.autocreate.mode"))) {
            try {
                new OutboxPublication(config.database(), config.publicationName(), config.outboxTables(), config.publicationColumns(),
                        config.shardFilter()).prepare();
            }
            catch (SQLException e) {
                return "cannot prepare publication " + config.publicationName() + " in " + config.database().jdbcUrl()
                        + (config.relay().shard().sharded() ? " (relay.shard.*)" : " (relay.publication.columns)") + ": " + e.getMessage();
            }
        }
        AtomicReference<DebeziumEngine<?>> toStop = new AtomicReference<>();
        // Closed from a thread of its own: the caller holds the sink's lock, which the engine thread may be waiting for.
        Runnable stopEngine = () -> {
            Thread closer = new Thread(() -> closeQuietly(toStop.get()), "outbox-relay-engine-stop");
            closer.setDaemon(true);
            closer.start();
        };
        StoredOffset stored;
        ResumeCheck.Result resume;
        try {
            stored = storedOffset(epoch);
            resume = resumeCheck(stored);
        }
        catch (SQLException e) {
            return "cannot read the stored offset from " + StoredOffsets.table((Map) config.engineProperties()) + " or slot " + config.slotName()
                    + ": " + e.getMessage();
        }
        resume.lines().forEach(line -> LOG.warn("{}", line));
        RabbitMqChangeConsumer sink = RabbitMqChangeConsumer.of(config, deadLetters, metrics, stopEngine,
                epoch < 0 ? PublishPermit.ALWAYS : leadership.permit(epoch), stored, transports());
        try {
            sink.connect();
            if (resume.resumesPastStored()) {
                sink.resumePastStoredOffset();
            }
        }
        catch (IOException | TimeoutException | RuntimeException e) {
            sink.close();
            if (config.streams()) {
                return rootMessage(e).startsWith("cannot") || rootMessage(e).startsWith("RabbitMQ") ? rootMessage(e)
                        : "cannot connect to RabbitMQ Streams (" + StreamSinkConfig.PREFIX + "host/port): " + rootMessage(e);
            }
            return "cannot connect to RabbitMQ (debezium.sink.rabbitmq.connection.*): " + rootMessage(e);
        }
        CompletableFuture<String> ended = new CompletableFuture<>();
        DebeziumEngine<ChangeEvent<SourceRecord, SourceRecord>> built = DebeziumEngine.create(Connect.class)
                .using(engineProperties(epoch))
                .using((success, message, error) -> ended.complete(
                        success ? "engine stopped" : "engine stopped with an error: " + (error != null ? rootMessage(error) : message)))
                .using(new DebeziumEngine.ConnectorCallback() {
                    @Override
                    public void taskStarted() {
                        streaming = true;
                        lastFailure = null;
                    }

                    @Override
                    public void taskStopped() {
                        streaming = false;
                    }
                })
                .notifying(sink)
                .build();
        consumer = sink;
        engine = built;
        toStop.set(built);
        Thread thread = new Thread(built, "outbox-relay-engine");
        thread.start();
        LOG.info("Relay '{}' started: slot {}, publication {}, tables {}", config.name(), config.slotName(), config.publicationName(), config.outboxTables());
        boolean abandoned = false;
        try {
            String end = awaitEnd(ended, epoch);
            abandoned = end == null;
            if (abandoned) {
                return "stepped down; the engine did not stop within " + STEP_DOWN_WAIT.toSeconds() + " s (a connection of it hangs) and is left behind: "
                        + "it cannot publish or store offsets any more";
            }
            return sink.fatal() != null ? sink.fatal() : end;
        }
        catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        }
        catch (ExecutionException e) {
            return "engine failed: " + rootMessage(e.getCause());
        }
        finally {
            try {
                thread.join(abandoned ? 1_000 : config.relay().shutdownGrace().toMillis() + 10_000);
            }
            catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
            streaming = false;
            sink.close();
            engine = null;
            consumer = null;
        }
    }

    /**
     * Why the engine ended; null when this process lost the lease and the engine did not end within
     * {@link #STEP_DOWN_WAIT}: a connection cut off mid-read can hold its thread for good, and a
     * standby must not wait on it. It is harmless where it hangs: its publishes ask for its own
     * epoch's lease, and its offset writes are fenced by that epoch.
     */
    private String awaitEnd(CompletableFuture<String> ended, long epoch) throws InterruptedException, ExecutionException {
        long lostAt = 0;
        while (true) {
            try {
                return ended.get(500, TimeUnit.MILLISECONDS);
            }
            catch (TimeoutException e) {
                if (epoch >= 0 && !leadership.leads(epoch)) {
                    lostAt = lostAt == 0 ? System.nanoTime() : lostAt;
                    if (System.nanoTime() - lostAt > STEP_DOWN_WAIT.toNanos()) {
                        return null;
                    }
                }
            }
        }
    }

    /**
     * The offset the engine will resume from. One written with Debezium's own {@code lsn_proc} (by an
     * older relay, or by Debezium) is first moved back to the start of its transaction, in the store,
     * so that this start already resumes as every later one does: see {@code sink.ResumePositions}.
     */
    @SuppressWarnings({ "unchecked", "rawtypes" })
    /** The broker connection the configuration asks for: AMQP 0-9-1 or the stream protocol. */
    private TransportFactory transports() {
        String connectionName = "outbox-relay " + config.name();
        if (config.streams()) {
            return (tracker, watermark) -> new StreamTransport(config.stream(), connectionName, tracker, watermark);
        }
        return (tracker, watermark) -> new AmqpTransport(config.sink(), connectionName, tracker);
    }

    private StoredOffset storedOffset(long epoch) throws SQLException {
        Map<String, String> raw = StoredOffsets.read((Map) config.engineProperties());
        Map<String, String> rewritten = new HashMap<>();
        raw.forEach((key, value) -> {
            String boundary = value == null ? null : StoredOffset.asBoundary(value);
            if (boundary != null) {
                rewritten.put(key, boundary);
            }
        });
        if (rewritten.isEmpty()) {
            return StoredOffset.from(raw);
        }
        StoredOffsets.write((Map) engineProperties(epoch), rewritten);
        raw.putAll(rewritten);
        StoredOffset moved = StoredOffset.from(raw);
        LOG.info("The stored offset was written by an older relay or by Debezium itself, inside a transaction; it was moved back to that"
                + " transaction's start ({}), which Debezium 3.6.1 resumes from without skipping: the transaction is sent again, with the same"
                + " message ids", moved.lsnText());
        return moved;
    }

    /** Where PostgreSQL will resume compared with the stored offset, with a line for whatever the user should know. */
    private ResumeCheck.Result resumeCheck(StoredOffset stored) throws SQLException {
        try (SourceInspector inspector = new SourceInspector(config.database(), "outbox-relay start check")) {
            return ResumeCheck.of(inspector, config, inspector.slot(config.slotName()), stored);
        }
    }

    /** The engine's properties; under a lease, with its epoch, which every offset write is fenced by. */
    private Properties engineProperties(long epoch) {
        Properties props = new Properties();
        props.putAll(config.engineProperties());
        if (epoch >= 0) {
            props.setProperty(PostgresOffsetStoreConfig.FENCING_TABLE, config.relay().leadership().table());
            props.setProperty(PostgresOffsetStoreConfig.FENCING_EPOCH, Long.toString(epoch));
        }
        return props;
    }

    /**
     * Drains and stops; safe to call from a shutdown hook. Waits at most the grace period plus a
     * margin. Returns whether everything handed to the sink was finished (so nothing is published
     * again on the next start).
     */
    public boolean stop() {
        stopping = true;
        boolean drained = true;
        RabbitMqChangeConsumer sink = consumer;
        if (sink != null) {
            try {
                drained = sink.drain(config.relay().shutdownGrace());
                if (!drained) {
                    LOG.warn("In-flight confirms did not all arrive within relay.shutdown.grace.ms; the unconfirmed tail is republished on the next start");
                    // A publish may be stuck in a socket write (a blocked or stalled broker); the engine cannot close around it.
                    sink.abortBroker();
                }
            }
            catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        closeQuietly(engine);
        synchronized (this) {
            notifyAll();
        }
        try {
            stopped.get(config.relay().shutdownGrace().toMillis() + 15_000, TimeUnit.MILLISECONDS);
        }
        catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        catch (ExecutionException | java.util.concurrent.TimeoutException e) {
            LOG.warn("The relay did not stop within relay.shutdown.grace.ms");
            return false;
        }
        return drained;
    }

    @Override
    public boolean live() {
        return !stopped.isDone();
    }

    @Override
    public boolean leads() {
        return !config.relay().leadership().standby() || leadership.isLeader();
    }

    /**
     * A standby is ready while it can take over: it reaches the lease table. A leader is ready
     * while it streams and publishes.
     */
    @Override
    public String notReadyReason() {
        if (stopping) {
            return "stopping";
        }
        if (config.relay().leadership().standby() && !leadership.isLeader()) {
            LeaseKeeper k = keeper;
            if (k == null) {
                return lastFailure == null ? "preparing the lease" : lastFailure;
            }
            if (k.failure() != null) {
                return k.failure();
            }
            // Until the keeper has seen another holder, this process is about to lead, not standing by.
            return leadership.standingBy() == null ? "looking for the lease" : standbyBrokerFailure;
        }
        if (!streaming) {
            String failure = lastFailure;
            return failure == null ? "the engine is starting" : "the engine is restarting after: " + failure;
        }
        if (!stream.connected()) {
            return "the replication stream from slot " + config.slotName() + " is not open (yet)";
        }
        String blocked = brokerBlockedReason();
        if (blocked != null) {
            return "RabbitMQ blocks publishing: " + blocked;
        }
        RabbitMqChangeConsumer sink = consumer;
        if (sink != null && sink.recovering()) {
            return "reconnecting to RabbitMQ";
        }
        String parking = sink == null ? null : sink.parkFailure();
        if (parking != null) {
            return parking;
        }
        return null;
    }

    @Override
    public boolean leader() {
        return leadership.isLeader();
    }

    @Override
    public long leaderEpoch() {
        return leadership.epoch();
    }

    @Override
    public long leadershipChanges() {
        return leadership.changes();
    }

    @Override
    public boolean streaming() {
        return streaming && stream.connected() && leads();
    }

    @Override
    public int inFlight() {
        RabbitMqChangeConsumer sink = consumer;
        return sink == null ? 0 : sink.inFlight();
    }

    @Override
    public long heldBytes() {
        RabbitMqChangeConsumer sink = consumer;
        return sink == null ? 0 : sink.heldBytes();
    }

    @Override
    public boolean deadLetterFailing() {
        RabbitMqChangeConsumer sink = consumer;
        return sink != null && sink.parkFailure() != null;
    }

    @Override
    public double secondsBehindSource() {
        RabbitMqChangeConsumer sink = consumer;
        return sink == null ? 0 : sink.secondsBehindSource();
    }

    /** How many times the engine was restarted after a failure. */
    public int restarts() {
        return restarts;
    }

    @Override
    public String brokerBlockedReason() {
        RabbitMqChangeConsumer sink = consumer;
        return sink == null ? null : sink.blockedReason();
    }

    private static void closeQuietly(DebeziumEngine<?> current) {
        if (current != null) {
            try {
                current.close();
            }
            catch (IOException e) {
                LOG.warn("Closing the engine failed: {}", e.getMessage());
            }
            catch (IllegalStateException e) {
                // A step-down closes from two sides (the lost lease, the sink's refused publish); the second finds it shut down.
                LOG.debug("The engine was already closed: {}", e.getMessage());
            }
        }
    }

    private synchronized void sleepUnlessStopping(Duration pause) throws InterruptedException {
        if (!stopping) {
            wait(pause.toMillis());
        }
    }

    /** The innermost message of a chain, which is the one that says what is wrong. */
    static String rootMessage(Throwable t) {
        Throwable root = t;
        StringBuilder chain = new StringBuilder(String.valueOf(t.getMessage()));
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
            if (root.getMessage() != null && !chain.toString().contains(root.getMessage())) {
                chain.append(": ").append(root.getMessage());
            }
        }
        return chain.toString();
    }

    /** Another process streams from the relay's slot. */
    public static final class SlotInUseException extends RuntimeException {
        SlotInUseException(String message) {
            super(message);
        }
    }

    /**
     * What the relay found would make it publish wrongly beside another: another number of shards
     * of its name with stored offsets (every event twice), another relay's stream producer name
     * (ids dropped as duplicates).
     */
    public static final class StartRefusedException extends RuntimeException {
        StartRefusedException(String message) {
            super(message);
        }
    }
}
