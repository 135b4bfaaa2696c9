package io.outboxrelay.sink;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.NavigableMap;
import java.util.Objects;
import java.util.TreeMap;

import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.metrics.RelayMetrics;

/**
 * Publisher confirms, tracked by delivery tag. Acks may come out of order and {@code multiple=true}
 * covers every tag up to the one given, so confirms are applied to a sorted map of what is in
 * flight rather than counted. Callbacks from a channel that has since been replaced carry an old
 * generation and are ignored: what was in flight on it is republished instead. It applies what the
 * broker says through {@link MessageFate}'s transitions and never sets a state itself. How much may
 * be in flight (records and body bytes) is {@link PublishPipeline}'s window, counted there alone.
 */
public final class ConfirmTracker {

    private final NavigableMap<Long, MessageFate> inFlight = new TreeMap<>();
    private final RelayMetrics metrics;
    private long generation;
    private String failure;
    /** Counts acks, nacks and failures, so a waiter can tell whether one came after it last looked. */
    private long changes;

    ConfirmTracker(RelayMetrics metrics) {
        this.metrics = metrics;
    }

    /** Starts tracking a new channel's confirms; returns its generation. */
    public synchronized long newGeneration() {
        generation++;
        failure = null;
        return generation;
    }

    /**
     * Records a publish before it is written, so even an immediate confirm finds it. A publish on a
     * channel already replaced is not tracked: its message stays IN_FLIGHT only until the pending
     * recovery rewinds everything unconfirmed.
     */
    public synchronized void published(long gen, long sequence, MessageFate p) {
        p.published(sequence);
        if (gen == generation) {
            inFlight.put(sequence, p);
        }
        else {
            p.rewound();
        }
    }

    /** A publish that failed before it left (the transport refused it): no confirm will come, so it is taken back, PENDING again. */
    public synchronized void withdrawn(long gen, long tag) {
        if (gen != generation) {
            return;
        }
        MessageFate p = inFlight.remove(tag);
        if (p != null) {
            p.rewound();
        }
    }

    public synchronized void ack(long gen, long tag, boolean multiple) {
        if (gen != generation) {
            return;
        }
        long now = System.nanoTime();
        for (MessageFate p : take(tag, multiple)) {
            p.acked();
            metrics.confirmed(p.message.destination(), p.publishedAtNanos(), now, p.commitMicros);
        }
        changed();
    }

    public synchronized void nack(long gen, long tag, boolean multiple) {
        if (gen != generation) {
            return;
        }
        List<MessageFate> nacked = take(tag, multiple);
        for (MessageFate p : nacked) {
            p.rewound();
            metrics.nacked(p.message.destination());
        }
        failure = "the broker rejected (nacked) " + nacked.size() + " message(s)";
        changed();
    }

    /**
     * A basic.return; it arrives before that message's ack. A return carries no delivery tag, so it
     * is matched to the oldest unreturned message in flight with the same message id, exchange,
     * routing key and body: two outbox rows may share an id, and a match on the id alone could
     * park the routed one and deliver nothing of the other. Messages alike in all four are the same
     * message, so which of them is parked does not change what anyone receives.
     */
    public synchronized void returned(long gen, String messageId, String exchange, String routingKey, byte[] body, String reason) {
        if (gen != generation) {
            return;
        }
        for (MessageFate p : inFlight.values()) {
            OutgoingMessage m = p.message;
            if (p.state() == MessageFate.State.IN_FLIGHT && Objects.equals(messageId, m.messageId()) && m.destination().equals(exchange)
                    && m.routingKey().equals(routingKey) && Arrays.equals(m.body(), body)) {
                p.returned(reason);
                return;
            }
        }
    }

    public synchronized void channelLost(long gen, String reason) {
        if (gen == generation && failure == null) {
            failure = reason;
            changed();
        }
    }

    /** Why the current channel can no longer be trusted, or null. */
    synchronized String failure() {
        return failure;
    }

    synchronized int inFlight() {
        return inFlight.size();
    }

    /** The publish time of the oldest unconfirmed message, or -1. */
    synchronized long oldestPublishedAtNanos() {
        return inFlight.isEmpty() ? -1 : inFlight.firstEntry().getValue().publishedAtNanos();
    }

    /**
     * Forgets the current channel: every unconfirmed publication goes back to PENDING (to be
     * republished) and late callbacks from that channel are ignored.
     */
    synchronized List<MessageFate> abandon() {
        List<MessageFate> lost = new ArrayList<>(inFlight.values());
        for (MessageFate p : lost) {
            p.rewound();
        }
        inFlight.clear();
        generation++;
        failure = null;
        return lost;
    }

    /** A snapshot to pass to {@link #awaitChangeSince}; take it before looking at the publications' states. */
    synchronized long changes() {
        return changes;
    }

    /**
     * Waits until a confirm, nack or failure arrives after the snapshot {@code seen}, or the timeout.
     * Waiting for "the next" notification instead would miss a confirm that came between the
     * caller's look and this call, and stall the batch for the whole timeout.
     */
    synchronized void awaitChangeSince(long seen, long timeoutMillis) throws InterruptedException {
        long deadline = System.nanoTime() + timeoutMillis * 1_000_000;
        while (changes == seen && failure == null) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                return;
            }
            wait(Math.max(1, left / 1_000_000));
        }
    }

    private void changed() {
        changes++;
        notifyAll();
    }

    private List<MessageFate> take(long tag, boolean multiple) {
        List<MessageFate> taken = new ArrayList<>();
        if (multiple) {
            Map<Long, MessageFate> head = inFlight.headMap(tag, true);
            taken.addAll(head.values());
            head.clear();
        }
        else {
            MessageFate p = inFlight.remove(tag);
            if (p != null) {
                taken.add(p);
            }
        }
        return taken;
    }
}
