package io.outboxrelay.sink;

import org.apache.kafka.connect.source.SourceRecord;

import io.debezium.engine.ChangeEvent;

/**
 * One record of a batch on its way to the broker. Its state changes on the engine thread (publish,
 * republish) and on the connection's thread (confirm, return), always under the
 * {@link ConfirmTracker}'s lock.
 */
final class Publication {

    enum State {
        /** Not published yet, or to be published again after a failure. */
        PENDING,
        /** Published, awaiting the broker's confirm. */
        IN_FLIGHT,
        /** Confirmed by the broker (and, if {@link #returnReason} is set, returned as unroutable). */
        CONFIRMED,
        /** Handled: published and confirmed, dead-lettered, or not for publishing at all. */
        DONE
    }

    final ChangeEvent<SourceRecord, SourceRecord> event;
    final OutgoingMessage message;
    /** When the source transaction committed (Debezium's {@code ts_usec} offset), or 0 if unknown. */
    final long commitMicros;
    State state;
    long sequence;
    long publishedAtNanos;
    String returnReason;

    Publication(ChangeEvent<SourceRecord, SourceRecord> event, OutgoingMessage message) {
        this.event = event;
        this.message = message;
        this.commitMicros = event == null ? 0 : commitMicros(event.value());
        this.state = message == null ? State.DONE : State.PENDING;
    }

    private static long commitMicros(SourceRecord record) {
        Object ts = record == null || record.sourceOffset() == null ? null : record.sourceOffset().get("ts_usec");
        return ts instanceof Number n ? n.longValue() : 0;
    }
}
