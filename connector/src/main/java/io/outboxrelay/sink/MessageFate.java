package io.outboxrelay.sink;

import java.util.Arrays;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;

import org.apache.kafka.connect.source.SourceRecord;

import io.debezium.engine.ChangeEvent;
import io.debezium.engine.DebeziumEngine;
import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.transforms.OutboxHeaders;

/**
 * One record the engine handed to the sink, and the one owner of its fate. Its state changes only
 * here, by the named transitions below, each of which names the states it may start from and
 * refuses any other: a transition from the wrong state is a bug and throws rather than quietly
 * moving a record towards "marked processed".
 * <pre>
 *   PENDING ──publish──▶ IN_FLIGHT ──ack──▶ CONFIRMED ──────────────▶ DONE
 *      ▲                  │    │
 *      └──nack / rewind───┘    └─return──▶ RETURNED ──ack──▶ REFUSED ──parked──▶ PARKED ──▶ DONE
 *   PENDING ──refuse (too large, no exchange)──────────────▶ REFUSED
 *   PENDING ──hold (its aggregate has a parked event)──────▶ REFUSED ──released (no longer)──▶ PENDING
 *   (invalid row) REFUSED from the start;  (heartbeat, not an event) IGNORED ──▶ DONE
 * </pre>
 * Only CONFIRMED, PARKED and IGNORED may become DONE: a record is marked processed only once its
 * outcome is durable (in a queue, or in the dead-letter table). REFUSED is the state that waits
 * for the dead-letter write; while that write fails, the record stays REFUSED and nothing behind it
 * can be marked, by any thread.
 * <p>
 * Callers on different threads (the engine thread or the tail finisher under the pipeline's lock,
 * the connection's thread through the {@link ConfirmTracker}) move it, so each transition is
 * atomic on this object's monitor.
 */
public final class MessageFate {

    enum State {
        /** To be published: not yet, or again after a nack or a lost channel. */
        PENDING,
        /** Published, awaiting the broker's confirm. */
        IN_FLIGHT,
        /** The broker returned it as unroutable; its confirm is still to come. */
        RETURNED,
        /** Confirmed and routed to a queue: delivered. */
        CONFIRMED,
        /** Will not be delivered (returned, too large, no such exchange, an invalid row): to be parked. */
        REFUSED,
        /** Written to the dead-letter table. */
        PARKED,
        /** Not an outbox event (a heartbeat, another table's change): nothing to deliver. */
        IGNORED,
        /** Marked processed: the offset may pass it. */
        DONE
    }

    /** Why a record is refused: which policy decides between parking it and stopping. */
    enum Refusal {
        /** The broker cannot take the message (no route, no exchange, too large): {@code relay.on-unroutable}. */
        UNDELIVERABLE,
        /** The router could not turn the row into a message: {@code relay.on-invalid}. */
        INVALID,
        /** Its aggregate has an event in the dead-letter table, so it waits there behind it ({@code relay.dead-letter.order}); never stops the relay. */
        HELD
    }

    private static final Set<State> MARKABLE = EnumSet.of(State.CONFIRMED, State.PARKED, State.IGNORED);

    final ChangeEvent<SourceRecord, SourceRecord> event;
    /** The message to publish; null for an invalid row or a record that is not an event. */
    final OutgoingMessage message;
    /** When the source transaction committed (Debezium's {@code ts_usec} offset), or 0 if unknown. */
    final long commitMicros;
    /** The stream publishing id (see {@link PublishingIds}); 0 when the sink does not number messages. */
    private long publishingId;
    /** Where Debezium resumes once it is marked (see {@link ResumePositions}). */
    private ResumePositions.Position resumeAt = ResumePositions.Position.UNCHANGED;
    private State state;
    private Refusal refusal;
    private String reason;
    private long sequence;
    private long publishedAtNanos;
    /** Written to the dead-letter table (or found there) at some point: its aggregate's later events wait behind it. */
    private boolean parkedOnce;
    /** {@link PublishPipeline}'s, under its lock: counted in its window (published, or waiting to be) until marked. */
    boolean inWindow;
    /** {@link #aggregate()}, worked out once (the order per aggregate asks for it at every step). */
    private String aggregate;
    private boolean aggregateKnown;
    /** {@link AggregateOrder}'s, set and read only by it under the pipeline's lock: the earlier record of this aggregate not yet known to be settled. */
    MessageFate predecessor;
    /** {@link AggregateOrder}'s: the parked event it waits behind, from the dead-letter table; null when none. */
    String heldBehind;
    /** {@link AggregateOrder}'s: where it came among the records of aggregates it linked. */
    long position;
    /** {@link AggregateOrder}'s: its own event is already in the dead-letter table, unredriven (a record read again after a restart). */
    boolean alreadyParked;

    private MessageFate(ChangeEvent<SourceRecord, SourceRecord> event, OutgoingMessage message, State state, Refusal refusal, String reason) {
        this.event = event;
        this.message = message;
        this.commitMicros = event == null ? 0 : commitMicros(event.value());
        this.state = state;
        this.refusal = refusal;
        this.reason = reason;
    }

    /** An outbox event to publish. */
    static MessageFate of(ChangeEvent<SourceRecord, SourceRecord> event, OutgoingMessage message) {
        return new MessageFate(event, message, State.PENDING, null, null);
    }

    /** A record that is not an outbox event: marked processed without publishing. */
    static MessageFate ignored(ChangeEvent<SourceRecord, SourceRecord> event) {
        return new MessageFate(event, null, State.IGNORED, null, null);
    }

    /** An outbox row the router could not turn into a message. */
    static MessageFate invalid(ChangeEvent<SourceRecord, SourceRecord> event, String reason) {
        return new MessageFate(event, null, State.REFUSED, Refusal.INVALID, reason);
    }

    /** An outbox event refused before publishing, e.g. larger than the relay will publish. */
    static MessageFate refused(ChangeEvent<SourceRecord, SourceRecord> event, OutgoingMessage message, String reason) {
        return new MessageFate(event, message, State.REFUSED, Refusal.UNDELIVERABLE, reason);
    }

    /** Numbers it, once, on the engine thread before anyone else sees it. */
    void number(long id) {
        this.publishingId = id;
    }

    /** Where Debezium resumes once it is marked; set once, on the engine thread before anyone else sees it. */
    void resumeAt(ResumePositions.Position position) {
        this.resumeAt = position;
    }

    /** Whether marking it moves the stored offset (false before any position is known). */
    boolean movesOffset() {
        return resumeAt.moves();
    }

    public long publishingId() {
        return publishingId;
    }

    /** The message to publish; null for an invalid row or a record that is not an event. */
    public OutgoingMessage message() {
        return message;
    }

    /** Its aggregate id (the record key the router set), as the dead-letter table holds it; null when it has none. */
    String aggregate() {
        if (!aggregateKnown) {
            Object key = event == null || event.value() == null ? null : event.value().key();
            aggregate = key == null ? null : String.valueOf(key);
            aggregateKnown = true;
        }
        return aggregate;
    }

    /** The outbox event's id (the message id); null for what is not an event. */
    String eventId() {
        if (message != null) {
            return message.messageId();
        }
        return event == null || event.value() == null ? null : OutboxHeaders.string(event.value(), OutboxHeaders.MESSAGE_ID);
    }

    /**
     * Tells the engine it is processed, with the offset {@link ResumePositions} chose for it instead of
     * the record's own, through Debezium's hook for that
     * ({@link DebeziumEngine.RecordCommitter#markProcessed(Object, DebeziumEngine.Offsets)}): the
     * position, the part of its transaction delivered and the stream's publishing-id count are then
     * written in one offset, never one without the others.
     */
    void markProcessed(DebeziumEngine.RecordCommitter<ChangeEvent<SourceRecord, SourceRecord>> committer) throws InterruptedException {
        Map<String, Object> offset = resumeAt.offset();
        if (offset == null) {
            return;
        }
        DebeziumEngine.Offsets offsets = committer.buildOffsets();
        offset.forEach(offsets::set);
        committer.markProcessed(event, offsets);
    }

    synchronized State state() {
        return state;
    }

    /** Why it is refused (or parked); null otherwise. */
    synchronized String reason() {
        return reason;
    }

    synchronized Refusal refusal() {
        return refusal;
    }

    synchronized long sequence() {
        return sequence;
    }

    synchronized long publishedAtNanos() {
        return publishedAtNanos;
    }

    /** The message's body size, which the confirm window counts; 0 for what is not published. */
    public int bytes() {
        return message == null ? 0 : message.body().length;
    }

    /** Handed to the channel with delivery tag {@code tag}. */
    synchronized void published(long tag) {
        expect(State.PENDING);
        sequence = tag;
        publishedAtNanos = System.nanoTime();
        state = State.IN_FLIGHT;
    }

    /** A basic.return: it reached no queue. The return comes before the message's ack. */
    synchronized void returned(String why) {
        expect(State.IN_FLIGHT);
        reason = why;
        refusal = Refusal.UNDELIVERABLE;
        state = State.RETURNED;
    }

    /** The broker's ack: delivered, or (after a return) refused. */
    synchronized void acked() {
        expect(State.IN_FLIGHT, State.RETURNED);
        state = state == State.RETURNED ? State.REFUSED : State.CONFIRMED;
    }

    /** A nack, or the channel it was published on is gone: publish it again, with the same message id. */
    synchronized void rewound() {
        expect(State.IN_FLIGHT, State.RETURNED);
        reason = null;
        refusal = null;
        state = State.PENDING;
    }

    /** Not to be published at all: the broker is known to refuse it. */
    public synchronized void refuse(String why) {
        expect(State.PENDING);
        reason = why;
        refusal = Refusal.UNDELIVERABLE;
        state = State.REFUSED;
    }

    /** Not published: it waits in the dead-letter table behind an earlier event of its aggregate. */
    synchronized void hold(String why) {
        expect(State.PENDING);
        reason = why;
        refusal = Refusal.HELD;
        state = State.REFUSED;
    }

    /** Held, and by the time it was to be parked its aggregate had nothing parked any more: to be published after all. */
    synchronized void released() {
        expect(State.REFUSED);
        if (refusal != Refusal.HELD) {
            throw new IllegalStateException("only a held record is released, not one refused as " + refusal);
        }
        reason = null;
        refusal = null;
        state = State.PENDING;
    }

    /** Its dead letter is written: from now on its outcome is durable. */
    synchronized void parked() {
        expect(State.REFUSED);
        parkedOnce = true;
        state = State.PARKED;
    }

    /** Refused, parked or held: an event of its aggregate published after it would overtake it. */
    synchronized boolean blocksItsAggregate() {
        return state == State.REFUSED || state == State.PARKED || parkedOnce;
    }

    /** Confirmed into a queue or a stream (or not an event): what comes after it in its aggregate may go. */
    synchronized boolean settled() {
        return state == State.CONFIRMED || state == State.IGNORED || (state == State.DONE && !parkedOnce);
    }

    /** Marked processed. Only a durable outcome may be: see the class comment. */
    synchronized void done() {
        if (!MARKABLE.contains(state)) {
            throw new IllegalStateException("a " + state + " record cannot be marked processed");
        }
        state = State.DONE;
    }

    synchronized boolean markable() {
        return MARKABLE.contains(state);
    }

    /** Not yet delivered nor parked: what the "behind source" gauge looks for. */
    synchronized boolean unfinished() {
        return state == State.PENDING || state == State.IN_FLIGHT || state == State.RETURNED || state == State.REFUSED;
    }

    private void expect(State... allowed) {
        for (State s : allowed) {
            if (state == s) {
                return;
            }
        }
        throw new IllegalStateException("a " + state + " record cannot move that way (expected " + Arrays.toString(allowed) + ")");
    }

    private static long commitMicros(SourceRecord record) {
        Object ts = record == null || record.sourceOffset() == null ? null : record.sourceOffset().get("ts_usec");
        return ts instanceof Number n ? n.longValue() : 0;
    }
}
