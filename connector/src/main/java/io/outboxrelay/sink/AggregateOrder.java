package io.outboxrelay.sink;

import java.sql.SQLException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.outboxrelay.deadletter.DeadLetterTable;

/**
 * {@code relay.dead-letter.order=keep-aggregate}: that no event overtakes an earlier one of its
 * aggregate, neither a parked one nor, over AMQP, one whose fate the broker has not told yet. Owns
 * the links between a record and the earlier record of its aggregate, the records that wait for
 * one, and what the dead-letter table says is held; the {@link PublishPipeline} asks it, under its
 * lock, what to do with each record before publishing it.
 * <p>
 * Over AMQP a message can be returned (no binding) or nacked after later ones of its aggregate were
 * published and routed; so an aggregate has one message awaiting its confirm at a time, and the
 * next waits here. Into a stream every refusal is known before publishing or refuses everything
 * sent to that stream, so nothing waits. Events without an aggregate id keep no order.
 * <p>
 * The table, not the heap, holds what is parked: each batch asks it which of its aggregates have an
 * event parked, but only while this relay has any.
 */
final class AggregateOrder {

    private static final Logger LOG = LoggerFactory.getLogger(AggregateOrder.class);
    /** How often, while the table holds parked events, it is asked again whether it still does. */
    private static final long RECHECK_NANOS = 5_000_000_000L;

    /** What to do with a record about to be published. */
    enum Verdict {
        PUBLISH,
        /** An earlier record of its aggregate awaits its confirm: later. */
        WAIT,
        /** Its aggregate has a parked event: it is parked behind it. */
        HOLD
    }

    private final boolean enabled;
    private final boolean oneInFlightPerAggregate;
    private final HeldLookup table;
    /** The last record handed over of each aggregate that is not yet marked: the next one's predecessor. */
    private final Map<String, MessageFate> last = new HashMap<>();
    /** Records waiting for their predecessor's confirm, per aggregate, in source order. */
    private final Map<String, ArrayDeque<MessageFate>> waiting = new HashMap<>();
    /** Whether this relay may have events parked with an aggregate id; re-checked every {@link #RECHECK_NANOS} while true. */
    private boolean tableMayHold = true;
    private int waitingCount;
    /** Counts the records linked, so that those released from waiting go out oldest first. */
    private long appended;
    private long checkedAtNanos = System.nanoTime() - RECHECK_NANOS;

    /** What the dead-letter table says is held ({@link DeadLetterTable#held}, {@link DeadLetterTable#anyHeld}). */
    interface HeldLookup {
        DeadLetterTable.Held held(Collection<String> aggregates, Collection<String> events) throws SQLException;

        boolean anyHeld() throws SQLException;

        static HeldLookup of(DeadLetterTable table) {
            return new HeldLookup() {
                @Override
                public DeadLetterTable.Held held(Collection<String> aggregates, Collection<String> events) throws SQLException {
                    return table.held(aggregates, events);
                }

                @Override
                public boolean anyHeld() throws SQLException {
                    return table.anyHeld();
                }
            };
        }
    }

    private AggregateOrder(boolean enabled, boolean oneInFlightPerAggregate, HeldLookup table) {
        this.enabled = enabled;
        this.oneInFlightPerAggregate = oneInFlightPerAggregate;
        this.table = table;
    }

    /** No order kept: every record is published at once (relay.dead-letter.order=none). */
    static AggregateOrder none() {
        return new AggregateOrder(false, false, null);
    }

    /** @param oneInFlightPerAggregate whether the transport can refuse a message after later ones went (AMQP) */
    static AggregateOrder keep(HeldLookup table, boolean oneInFlightPerAggregate) {
        return new AggregateOrder(true, oneInFlightPerAggregate, table);
    }

    boolean enabled() {
        return enabled;
    }

    /**
     * Links each record of a batch to the earlier one of its aggregate and marks those whose
     * aggregate the table holds. A table that cannot be read is thrown: publishing an event that
     * ought to wait would break the order for good, while the engine retries a failed batch.
     */
    void appended(List<MessageFate> batch) throws SQLException {
        if (!enabled) {
            return;
        }
        for (MessageFate p : batch) {
            String aggregate = p.aggregate();
            if (aggregate != null && p.state() != MessageFate.State.IGNORED) {
                p.position = ++appended;
                p.predecessor = last.put(aggregate, p);
            }
        }
        if (!tableMayHold()) {
            return;
        }
        Set<String> aggregates = new HashSet<>();
        Set<String> events = new HashSet<>();
        for (MessageFate p : batch) {
            if (p.aggregate() != null && p.state() != MessageFate.State.IGNORED) {
                aggregates.add(p.aggregate());
                if (p.eventId() != null) {
                    events.add(p.eventId());
                }
            }
        }
        if (aggregates.isEmpty()) {
            return;
        }
        DeadLetterTable.Held held = table.held(aggregates, events);
        if (held.firstParkedByAggregate().isEmpty()) {
            return;
        }
        for (MessageFate p : batch) {
            String blocker = p.aggregate() == null ? null : held.firstParkedByAggregate().get(p.aggregate());
            if (blocker != null && p.state() != MessageFate.State.IGNORED) {
                p.heldBehind = blocker;
                p.alreadyParked = held.parkedEvents().contains(p.eventId());
            }
        }
    }

    private boolean tableMayHold() throws SQLException {
        if (tableMayHold && System.nanoTime() - checkedAtNanos > RECHECK_NANOS) {
            checkedAtNanos = System.nanoTime();
            tableMayHold = table.anyHeld();
        }
        return tableMayHold;
    }

    /** What to do with {@code p}, next to be published. */
    Verdict verdict(MessageFate p) {
        if (!enabled || p.aggregate() == null) {
            return Verdict.PUBLISH;
        }
        if (p.heldBehind != null) {
            return Verdict.HOLD;
        }
        MessageFate before = p.predecessor;
        if (before == null || before.settled()) {
            p.predecessor = null;
            return Verdict.PUBLISH;
        }
        if (before.blocksItsAggregate()) {
            return Verdict.HOLD;
        }
        return oneInFlightPerAggregate ? Verdict.WAIT : Verdict.PUBLISH;
    }

    /** Why {@code p} is held: the event it waits behind. */
    String holdReason(MessageFate p) {
        String behind = p.heldBehind;
        if (behind == null && p.predecessor != null) {
            MessageFate before = p.predecessor;
            behind = before.heldBehind != null ? before.heldBehind : before.eventId();
            p.heldBehind = behind;
        }
        p.predecessor = null;
        return DeadLetterTable.heldReason(behind, p.aggregate());
    }

    /** {@code p} waits for its predecessor's confirm. */
    void await(MessageFate p) {
        waiting.computeIfAbsent(p.aggregate(), a -> new ArrayDeque<>()).add(p);
        waitingCount++;
    }

    /** Records waiting for an earlier one's confirm. */
    int waitingCount() {
        return waitingCount;
    }

    /**
     * Hands back, to be published first, each waiting record whose predecessor is settled or
     * blocks (it is then held when it comes up); the ones behind it in its aggregate go on waiting
     * for it. Cost: one look per aggregate that has a record waiting.
     */
    void releaseSettled(ArrayDeque<MessageFate> unpublished) {
        if (waiting.isEmpty()) {
            return;
        }
        List<MessageFate> ready = new ArrayList<>();
        for (Iterator<ArrayDeque<MessageFate>> it = waiting.values().iterator(); it.hasNext();) {
            ArrayDeque<MessageFate> queue = it.next();
            MessageFate head = queue.peek();
            MessageFate before = head.predecessor;
            if (before == null || before.settled() || before.blocksItsAggregate()) {
                MessageFate p = queue.poll();
                ready.add(p);
                waitingCount--;
                if (queue.isEmpty()) {
                    it.remove();
                }
            }
        }
        // Oldest first: the window's room goes to what came first.
        ready.sort((a, b) -> Long.compare(b.position, a.position));
        for (MessageFate p : ready) {
            unpublished.addFirst(p);
        }
    }

    /** After a failure the pipeline publishes again from the first unconfirmed record, in source order: nothing waits any more. */
    void rewound() {
        waiting.clear();
        waitingCount = 0;
    }

    /** The table no longer holds {@code p}'s aggregate: it is published after all. */
    void released(MessageFate p) {
        p.heldBehind = null;
        p.alreadyParked = false;
        p.predecessor = null;
        LOG.info("Outbox event {} of aggregate {} is published after all: its aggregate has nothing parked any more", p.eventId(), p.aggregate());
    }

    /** {@code p} is parked: this relay's table holds an aggregate from now on. */
    void parked(MessageFate p) {
        if (enabled && p.aggregate() != null) {
            tableMayHold = true;
        }
    }

    /** {@code p} is marked processed: it is nobody's predecessor-to-be any more. */
    void marked(MessageFate p) {
        String aggregate = p.aggregate();
        if (enabled && aggregate != null && last.get(aggregate) == p) {
            last.remove(aggregate);
        }
    }
}
