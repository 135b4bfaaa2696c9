package io.outboxrelay.metrics;

import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;

/**
 * The relay's meters, named {@code outbox_relay_*} in Prometheus. Per-exchange counters are cached
 * here because the sink touches them once per message and Micrometer's own lookup builds an id
 * each time. An exchange can come from row data ({@code exchange.template}), so the label takes at
 * most {@link #MAX_EXCHANGES} distinct values and counts the rest under {@link #OTHER_EXCHANGE}:
 * one bad template must not create a series per row in every scraper downstream.
 */
public final class RelayMetrics {

    static final int MAX_EXCHANGES = 100;
    static final String OTHER_EXCHANGE = "_other";
    private static final Logger LOG = LoggerFactory.getLogger(RelayMetrics.class);

    private final MeterRegistry registry;
    private final Set<String> exchanges = ConcurrentHashMap.newKeySet();
    private volatile boolean warnedExchanges;
    private final Map<String, Counter> published = new ConcurrentHashMap<>();
    private final Map<String, Counter> confirmed = new ConcurrentHashMap<>();
    private final Map<String, Counter> nacked = new ConcurrentHashMap<>();
    private final Map<String, Counter> returned = new ConcurrentHashMap<>();
    private final Map<String, Counter> deadLettered = new ConcurrentHashMap<>();
    private final Timer confirmLatency;
    private final Timer commitToConfirm;
    private final DistributionSummary batchSize;
    private final Counter reconnects;
    private final Counter engineRestarts;

    private RelayMetrics(MeterRegistry registry) {
        this.registry = registry;
        this.confirmLatency = Timer.builder("outbox.relay.confirm.latency")
                .description("Time from publishing a message to the broker's confirm")
                .publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofMillis(1))
                .maximumExpectedValue(Duration.ofSeconds(30))
                .register(registry);
        this.commitToConfirm = Timer.builder("outbox.relay.commit.to.confirm.latency")
                .description("Time from the outbox row's commit in PostgreSQL to the broker's confirm of its message")
                .publishPercentileHistogram()
                .minimumExpectedValue(Duration.ofMillis(1))
                .maximumExpectedValue(Duration.ofMinutes(10))
                .register(registry);
        this.batchSize = DistributionSummary.builder("outbox.relay.batch.size")
                .description("Records per batch handed to the sink by the engine")
                .baseUnit("records")
                .register(registry);
        this.reconnects = Counter.builder("outbox.relay.broker.reconnects").description("Broker channels abandoned and reopened after a failure").register(registry);
        this.engineRestarts = Counter.builder("outbox.relay.engine.restarts").description("Engine restarts after a failure").register(registry);
    }

    /** Metrics for scraping, with the JVM's own meters bound. */
    public static RelayMetrics prometheus(String relayName) {
        PrometheusMeterRegistry registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        registry.config().commonTags("relay", relayName);
        new JvmMemoryMetrics().bindTo(registry);
        new JvmGcMetrics().bindTo(registry);
        new JvmThreadMetrics().bindTo(registry);
        new ClassLoaderMetrics().bindTo(registry);
        new ProcessorMetrics().bindTo(registry);
        new UptimeMetrics().bindTo(registry);
        return new RelayMetrics(registry);
    }

    /** Metrics nobody scrapes (commands other than {@code run}, tests that do not look). */
    public static RelayMetrics inMemory() {
        return new RelayMetrics(new SimpleMeterRegistry());
    }

    public MeterRegistry registry() {
        return registry;
    }

    /** The Prometheus text exposition, or null when this registry is not a Prometheus one. */
    public String scrape() {
        return registry instanceof PrometheusMeterRegistry p ? p.scrape() : null;
    }

    /**
     * Creates the per-exchange counters of an exchange at zero, so that dashboards and alerts see
     * a series (and {@code rate()} works) before the first event, nack or dead letter.
     */
    public void expectExchange(String exchange) {
        counter(published, "outbox.relay.events.published", "Messages published (republished ones count again)", exchange);
        counter(confirmed, "outbox.relay.events.confirmed", "Messages the broker confirmed", exchange);
        counter(nacked, "outbox.relay.events.nacked", "Messages the broker rejected (they are republished)", exchange);
        counter(returned, "outbox.relay.events.returned", "Messages the broker returned as unroutable", exchange);
        counter(deadLettered, "outbox.relay.events.dead.lettered", "Events written to the dead-letter table", exchange);
    }

    public void published(String exchange) {
        counter(published, "outbox.relay.events.published", "Messages published (republished ones count again)", exchange).increment();
    }

    /** A confirm for one message: counts it and records both latencies. */
    public void confirmed(String exchange, long publishedAtNanos, long nowNanos, long commitMicros) {
        counter(confirmed, "outbox.relay.events.confirmed", "Messages the broker confirmed", exchange).increment();
        confirmLatency.record(nowNanos - publishedAtNanos, TimeUnit.NANOSECONDS);
        if (commitMicros > 0) {
            long nowMicros = TimeUnit.MILLISECONDS.toMicros(System.currentTimeMillis());
            commitToConfirm.record(Math.max(0, nowMicros - commitMicros), TimeUnit.MICROSECONDS);
        }
    }

    public void nacked(String exchange) {
        counter(nacked, "outbox.relay.events.nacked", "Messages the broker rejected (they are republished)", exchange).increment();
    }

    public void returned(String exchange) {
        counter(returned, "outbox.relay.events.returned", "Messages the broker returned as unroutable", exchange).increment();
    }

    public void deadLettered(String exchange) {
        counter(deadLettered, "outbox.relay.events.dead.lettered", "Events written to the dead-letter table", exchange == null ? "" : exchange).increment();
    }

    public void batch(int records) {
        batchSize.record(records);
    }

    public void reconnected() {
        reconnects.increment();
    }

    public void engineRestarted() {
        engineRestarts.increment();
    }

    /** Outbox rows retention deleted ({@code relay.outbox.retention.ms}). */
    public void outboxRowsDeleted(long rows) {
        Counter.builder("outbox.relay.outbox.rows.deleted").description("Outbox rows deleted by retention, all behind the stored offset")
                .register(registry).increment(rows);
    }

    /** The gauges of the running relay, read from {@code state} at each scrape. */
    public void register(RelayState state) {
        gauge("outbox.relay.leader", "1 while this process holds its relay's lease and may run the engine; 0 on a standby", () -> state.leader() ? 1 : 0);
        gauge("outbox.relay.leader.epoch", "The lease epoch this process holds or last held (it fences every offset write)", state::leaderEpoch);
        FunctionCounter.builder("outbox.relay.leadership.changes", state, RelayState::leadershipChanges)
                .description("Times this process became leader or stepped down").register(registry);
        gauge("outbox.relay.streaming", "1 while the engine's replication stream from the slot is open", () -> state.streaming() ? 1 : 0);
        gauge("outbox.relay.broker.blocked", "1 while RabbitMQ blocks the relay's connection (a resource alarm)", () -> state.brokerBlockedReason() != null ? 1 : 0);
        gauge("outbox.relay.in.flight", "Messages published and awaiting the broker's confirm", state::inFlight);
        gauge("outbox.relay.in.flight.bytes", "Body bytes of the messages published and not yet marked processed (max.in.flight.bytes)", state::heldBytes);
        gauge("outbox.relay.dead.letter.failing", "1 while the dead-letter table refuses a row (the stream stands before it)",
                () -> state.deadLetterFailing() ? 1 : 0);
        gauge("outbox.relay.source.behind.seconds", "How far behind its commit the oldest event not yet delivered or parked is; 0 when idle",
                state::secondsBehindSource);
    }

    /** Registers a gauge read from {@code value} at each scrape. */
    public void gauge(String name, String description, Supplier<Number> value) {
        Gauge.builder(name, value).description(description).register(registry);
    }

    private Counter counter(Map<String, Counter> cache, String name, String description, String exchange) {
        Counter c = cache.get(exchange);
        if (c == null) {
            c = cache.computeIfAbsent(label(exchange), ex -> Counter.builder(name).description(description).tag("exchange", ex).register(registry));
        }
        return c;
    }

    /** The exchange itself while fewer than {@link #MAX_EXCHANGES} have been seen, else {@link #OTHER_EXCHANGE}. */
    private String label(String exchange) {
        if (exchanges.contains(exchange)) {
            return exchange;
        }
        synchronized (exchanges) {
            if (exchanges.size() < MAX_EXCHANGES) {
                exchanges.add(exchange);
                return exchange;
            }
        }
        if (!warnedExchanges) {
            warnedExchanges = true;
            LOG.warn("Events went to more than {} exchanges; the metrics count the others under exchange=\"{}\" (does exchange.template use a column "
                    + "with many values?)", MAX_EXCHANGES, OTHER_EXCHANGE);
        }
        return OTHER_EXCHANGE;
    }
}
