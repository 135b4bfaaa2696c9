package io.outboxrelay.inbox;

import java.time.Duration;
import java.util.Objects;
import java.util.function.Consumer;

/** What both inboxes are configured with, declared once. */
public abstract class InboxBuilder<B extends InboxBuilder<B>> {

    final String consumer;
    final ConnectionSource connections;
    String table = "inbox_processed";
    int maxAttempts = 5;
    Duration backoff = Duration.ofMillis(200);
    Duration maxBackoff = Duration.ofSeconds(10);
    Consumer<InboxMessage> afterCommit = m -> { };

    InboxBuilder(String consumer, ConnectionSource connections) {
        if (consumer == null || consumer.isBlank()) {
            throw new IllegalArgumentException("the consumer name is required: each name processes every message once");
        }
        this.consumer = consumer;
        this.connections = Objects.requireNonNull(connections, "connections");
    }

    @SuppressWarnings("unchecked")
    private B self() {
        return (B) this;
    }

    /** The processed-id table, optionally schema-qualified (default {@code inbox_processed}). */
    public B table(String name) {
        this.table = ProcessedIds.checkTable(name);
        return self();
    }

    /** How many times a failing handler is tried before the message is rejected (default 5). */
    public B maxAttempts(int attempts) {
        if (attempts < 1) {
            throw new IllegalArgumentException("maxAttempts must be at least 1");
        }
        this.maxAttempts = attempts;
        return self();
    }

    /** The first pause before another try, doubling per failed attempt up to {@code max} (default 200 ms to 10 s). */
    public B backoff(Duration first, Duration max) {
        if (first.isNegative() || max.compareTo(first) < 0) {
            throw new IllegalArgumentException("backoff: the first pause must not be negative, nor longer than the longest");
        }
        this.backoff = first;
        this.maxBackoff = max;
        return self();
    }

    /**
     * Called after a message's transaction committed and before it is settled (for metrics or
     * tracing). If it throws, a queue's message is not acknowledged (its redelivery is then recognised
     * as a duplicate); a stream's offset was stored with the commit either way.
     */
    public B afterCommit(Consumer<InboxMessage> listener) {
        this.afterCommit = Objects.requireNonNull(listener);
        return self();
    }

    ProcessedIds processedIds() {
        return new ProcessedIds(connections, consumer, table);
    }

    Attempts attempts() {
        return new Attempts(maxAttempts, backoff, maxBackoff);
    }
}
