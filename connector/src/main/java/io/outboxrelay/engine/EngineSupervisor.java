package io.outboxrelay.engine;

import java.io.IOException;
import java.sql.SQLException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.TimeoutException;

import org.apache.kafka.connect.source.SourceRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.debezium.embedded.Connect;
import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.deadletter.DeadLetterTable;
import io.outboxrelay.metrics.RelayMetrics;
import io.outboxrelay.metrics.RelayState;
import io.outboxrelay.source.OutboxPublication;
import io.outboxrelay.source.SlotStatus;
import io.outboxrelay.source.SourceInspector;
import io.outboxrelay.sink.RabbitMqChangeConsumer;

/**
 * Runs the Debezium engine with the RabbitMQ sink and keeps it running: when the engine stops with
 * an error (PostgreSQL restarted, the slot busy, the broker gone) it is rebuilt and started again
 * with back-off, resuming from the stored offset. {@link #stop()} drains in-flight confirms and
 * lets the engine flush its offsets, within {@code relay.shutdown.grace.ms}.
 */
public final class EngineSupervisor implements Health, RelayState {

    private static final Logger LOG = LoggerFactory.getLogger(EngineSupervisor.class);
    /** An engine that ran this long before failing was healthy; its failure restarts the back-off. */
    private static final Duration HEALTHY_RUN = Duration.ofMinutes(1);
    private static final Duration SLOT_RELEASE_WAIT = Duration.ofSeconds(10);

    private final RelayConfig config;
    private final RelayMetrics metrics;
    private final CompletableFuture<Void> stopped = new CompletableFuture<>();
    private volatile boolean stopping;
    private volatile DebeziumEngine<ChangeEvent<SourceRecord, SourceRecord>> engine;
    private volatile RabbitMqChangeConsumer consumer;
    private volatile int restarts;
    private volatile boolean streaming;
    private volatile String lastFailure;
    private final StreamingConnection stream;

    public EngineSupervisor(RelayConfig config, RelayMetrics metrics) {
        this.config = config;
        this.metrics = metrics;
        this.stream = new StreamingConnection(config.engineProperties().getProperty("topic.prefix"));
    }

    /**
     * Runs until {@link #stop()}; returns after the last engine has closed.
     *
     * @throws SlotInUseException before starting anything, when another process streams from the slot
     */
    public void run() throws InterruptedException {
        try {
            refuseIfSlotInUse();
        }
        catch (SlotInUseException e) {
            stopped.complete(null);
            throw e;
        }
        Duration backoff = config.relay().restartBackoffInitial();
        try (DeadLetterTable deadLetters = new DeadLetterTable(config.database(), config.relay().deadLetterTable(), config.name())) {
            while (!stopping) {
                long started = System.nanoTime();
                String failure = runOnce(deadLetters);
                if (stopping) {
                    break;
                }
                if (System.nanoTime() - started > HEALTHY_RUN.toNanos()) {
                    backoff = config.relay().restartBackoffInitial();
                }
                restarts++;
                lastFailure = failure;
                metrics.engineRestarted();
                LOG.error("{}; restarting in {} ms", failure, backoff.toMillis());
                sleepUnlessStopping(backoff);
                Duration doubled = backoff.multipliedBy(2);
                backoff = doubled.compareTo(config.relay().restartBackoffMax()) > 0 ? config.relay().restartBackoffMax() : doubled;
            }
        }
        finally {
            stopped.complete(null);
        }
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

    /** Runs one engine to its end; returns why it ended. */
    private String runOnce(DeadLetterTable deadLetters) {
        try {
            deadLetters.createIfMissing();
        }
        catch (SQLException e) {
            return "cannot prepare dead-letter table " + deadLetters.table() + " in " + config.database().jdbcUrl() + " (relay.dead-letter.table): " + e.getMessage();
        }
        if ("filtered".equalsIgnoreCase(config.engineProperties().getProperty("publication.autocreate.mode"))) {
            try {
                new OutboxPublication(config.database(), config.publicationName(), config.outboxTables(), config.relay().publicationColumns()).prepare();
            }
            catch (SQLException e) {
                return "cannot prepare publication " + config.publicationName() + " in " + config.database().jdbcUrl() + " (relay.publication.columns): " + e.getMessage();
            }
        }
        AtomicReference<DebeziumEngine<?>> toStop = new AtomicReference<>();
        // Closed from a thread of its own: the caller holds the sink's lock, which the engine thread may be waiting for.
        Runnable stopEngine = () -> {
            Thread closer = new Thread(() -> closeQuietly(toStop.get()), "outbox-relay-engine-stop");
            closer.setDaemon(true);
            closer.start();
        };
        RabbitMqChangeConsumer sink = new RabbitMqChangeConsumer(config.sink(), config.relay(), deadLetters, metrics, stopEngine);
        try {
            sink.connect();
        }
        catch (IOException | TimeoutException | RuntimeException e) {
            sink.close();
            return "cannot connect to RabbitMQ (debezium.sink.rabbitmq.connection.*): " + rootMessage(e);
        }
        CompletableFuture<String> ended = new CompletableFuture<>();
        DebeziumEngine<ChangeEvent<SourceRecord, SourceRecord>> built = DebeziumEngine.create(Connect.class)
                .using(config.engineProperties())
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
        try {
            String end = ended.get();
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
                thread.join(config.relay().shutdownGrace().toMillis() + 10_000);
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
    public String notReadyReason() {
        if (stopping) {
            return "stopping";
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
    public boolean streaming() {
        return streaming && stream.connected();
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
}
