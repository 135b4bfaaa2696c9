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
 * events. A numbering with no stored count (the first start, offsets from the AMQP sink) begins
 * above the broker's last publishing id of this producer, which the sink reads before the engine
 * starts: whatever an earlier relay of this name numbered, on whatever host's clock, nothing new is
 * taken for a duplicate. Where the stream is not known before the first event (its name comes from
 * the topic) it begins at the clock's microseconds, above any count a relay can have reached.
 * <p>
 * Used on the engine thread only.
 */
final class PublishingIds {

    static final String OFFSET_KEY = StoredOffset.PUBLISHING_ID_KEY;

    private static final Logger LOG = LoggerFactory.getLogger(PublishingIds.class);

    private long last;
    /** Whether the numbering goes on from a stored count; if not, it begins above the broker's last id ({@link #beginAbove}). */
    private final boolean stored;
    private final String producer;

    private PublishingIds(long last, boolean stored, String producer) {
        this.last = last;
        this.stored = stored;
        this.producer = producer;
    }

    /** Goes on from the stored offset's count, or begins a new numbering at the clock's microseconds until {@link #beginAbove} says where. */
    static PublishingIds from(StoredOffset stored, long nowMicros, String producer) {
        if (stored != null && stored.publishingId() >= 0) {
            return new PublishingIds(stored.publishingId(), true, producer);
        }
        return new PublishingIds(nowMicros, false, producer);
    }

    /** The producer name the broker de-duplicates these ids under. */
    String producer() {
        return producer;
    }

    /** Whether there was no stored count to go on from. */
    boolean fresh() {
        return !stored;
    }

    /** Begins a fresh numbering right above {@code brokerLast}, the broker's last publishing id of this producer (0 when it has none). */
    void beginAbove(long brokerLast) {
        LOG.info("No publishing id in the stored offset: numbering stream messages of producer '{}' from {}, the broker's last id of it", producer,
                brokerLast + 1);
        last = brokerLast;
    }

    /** A fresh numbering where the stream cannot be asked before the first event: the clock's microseconds stay. */
    void beginAtClock() {
        LOG.info("No publishing id in the stored offset: numbering stream messages from {} (the clock's microseconds; with "
                + "{}stream set, the broker's last id of the producer is asked instead)", last, io.outboxrelay.config.StreamSinkConfig.PREFIX);
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
    void number(MessageFate p, boolean event) {
        if (event) {
            last++;
            p.number(last);
        }
    }
}
