package io.outboxrelay.engine;

import java.io.IOException;
import java.sql.SQLException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import org.apache.kafka.connect.source.SourceRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.debezium.embedded.Connect;
import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.deadletter.DeadLetterTable;
import io.outboxrelay.sink.RabbitMqChangeConsumer;

/**
 * Runs the Debezium engine with the RabbitMQ sink and keeps it running: when the engine stops with
 * an error (PostgreSQL restarted, the slot busy, the broker gone) it is rebuilt and started again
 * with back-off, resuming from the stored offset. {@link #stop()} drains in-flight confirms and
 * lets the engine flush its offsets, within {@code relay.shutdown.grace.ms}.
 */
public final class EngineSupervisor {

    private static final Logger LOG = LoggerFactory.getLogger(EngineSupervisor.class);
    /** An engine that ran this long before failing was healthy; its failure restarts the back-off. */
    private static final Duration HEALTHY_RUN = Duration.ofMinutes(1);

    private final RelayConfig config;
    private final CompletableFuture<Void> stopped = new CompletableFuture<>();
    private volatile boolean stopping;
    private volatile DebeziumEngine<ChangeEvent<SourceRecord, SourceRecord>> engine;
    private volatile RabbitMqChangeConsumer consumer;
    private volatile int restarts;

    public EngineSupervisor(RelayConfig config) {
        this.config = config;
    }

    /** Runs until {@link #stop()}; returns after the last engine has closed. */
    public void run() throws InterruptedException {
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

    /** Runs one engine to its end; returns why it ended. */
    private String runOnce(DeadLetterTable deadLetters) {
        try {
            deadLetters.createIfMissing();
        }
        catch (SQLException e) {
            return "cannot prepare dead-letter table " + deadLetters.table() + " in " + config.database().jdbcUrl() + " (relay.dead-letter.table): " + e.getMessage();
        }
        RabbitMqChangeConsumer sink = new RabbitMqChangeConsumer(config.sink(), config.relay(), deadLetters);
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
                .notifying(sink)
                .build();
        consumer = sink;
        engine = built;
        Thread thread = new Thread(built, "outbox-relay-engine");
        thread.start();
        LOG.info("Relay '{}' started: slot {}, publication {}, tables {}", config.name(), config.slotName(), config.publicationName(), config.outboxTables());
        try {
            return ended.get();
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
            sink.close();
            engine = null;
            consumer = null;
        }
    }

    /** Drains and stops; safe to call from a shutdown hook. Waits at most the grace period plus a margin. */
    public void stop() {
        stopping = true;
        RabbitMqChangeConsumer sink = consumer;
        if (sink != null) {
            try {
                if (!sink.drain(config.relay().shutdownGrace())) {
                    LOG.warn("In-flight confirms did not all arrive within relay.shutdown.grace.ms; the unconfirmed tail is republished on the next start");
                }
            }
            catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
        DebeziumEngine<?> current = engine;
        if (current != null) {
            try {
                current.close();
            }
            catch (IOException e) {
                LOG.warn("Closing the engine failed: {}", e.getMessage());
            }
        }
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
        }
    }

    /** How many times the engine was restarted after a failure. */
    public int restarts() {
        return restarts;
    }

    /** The broker's reason while it blocks publishing, or null. */
    public String brokerBlockedReason() {
        RabbitMqChangeConsumer sink = consumer;
        return sink == null ? null : sink.blockedReason();
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
}
