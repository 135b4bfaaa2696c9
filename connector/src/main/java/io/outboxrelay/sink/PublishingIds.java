package io.outboxrelay.sink;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.outboxrelay.source.StoredOffset;

/**
 * The publishing ids of the stream producer: a deterministic function of each event's place in
 * the source, so that an event published again after a crash, a failover or a broker restart
 * carries the id it had the first time and the broker drops it.
 * <p>
 * Ids count the outbox events in the order Debezium emits them, which is PostgreSQL's commit order
 * and, within a transaction, WAL order: strictly increasing across transactions and inside a large
 * one, whatever their size. The count reached at each stored position is written in the offset
 * ({@link ResumePositions}), so after a restart, when Debezium sends everything after that
 * position again, the numbering goes on from there exactly as the first run numbered the same
 * events. A numbering with no stored count (the first start, offsets from the AMQP sink) begins at
 * the clock's microseconds: above every id an earlier numbering can have reached, since no relay
 * publishes a million events a second, so nothing new is ever taken for a duplicate.
 * <p>
 * Used on the engine thread only.
 */
final class PublishingIds {

    static final String OFFSET_KEY = StoredOffset.PUBLISHING_ID_KEY;

    private static final Logger LOG = LoggerFactory.getLogger(PublishingIds.class);

    private long last;

    private PublishingIds(long last) {
        this.last = last;
    }

    /** Goes on from the stored offset's count, or begins a new numbering. */
    static PublishingIds from(StoredOffset stored, long nowMicros) {
        if (stored != null && stored.publishingId() >= 0) {
            return new PublishingIds(stored.publishingId());
        }
        LOG.info("No publishing id in the stored offset: numbering stream messages from {} (the clock's microseconds)", nowMicros);
        return new PublishingIds(nowMicros);
    }

    /** The highest id given so far. */
    long last() {
        return last;
    }

    /**
     * Goes on above {@code floor} (the broker's last id of this producer) when the stored count
     * cannot be trusted: PostgreSQL resumes past the stored position, so the events between were
     * numbered by a run whose count was never stored.
     */
    void raiseTo(long floor) {
        if (floor > last) {
            LOG.warn("Numbering stream messages from {}, the broker's last publishing id of this producer, instead of the stored count {}: "
                    + "PostgreSQL does not send again what lies between the stored offset and the slot's position", floor, last);
            last = floor;
        }
    }

    /** Numbers {@code p}: an event gets the next id; anything else keeps 0. */
    void number(Publication p, boolean event) {
        if (event) {
            last++;
            p.number(last);
        }
    }
}
