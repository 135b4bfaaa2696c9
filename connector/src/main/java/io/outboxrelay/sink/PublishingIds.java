package io.outboxrelay.sink;

import java.util.Map;
import java.util.Objects;

import org.apache.kafka.connect.source.SourceRecord;
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
 * one, whatever their size. The count reached at each record is stored in that record's offset
 * ({@link #OFFSET_KEY}), in the same write as the position, so after a restart the numbering goes on
 * from the stored offset exactly where the first run numbered the same events. A numbering with no
 * stored count (the first start, offsets from the AMQP sink) begins at the clock's microseconds:
 * above every id an earlier numbering can have reached, since no relay publishes a million events
 * a second, so nothing new is ever taken for a duplicate.
 * <p>
 * Used on the engine thread only.
 */
final class PublishingIds {

    static final String OFFSET_KEY = StoredOffset.PUBLISHING_ID_KEY;

    private static final Logger LOG = LoggerFactory.getLogger(PublishingIds.class);

    private final StoredOffset stored;
    private long last;
    private long skipped;

    private PublishingIds(StoredOffset stored, long last) {
        this.stored = stored;
        this.last = last;
    }

    /** Goes on from the stored offset's count, or begins a new numbering. */
    static PublishingIds from(StoredOffset stored, long nowMicros) {
        if (stored != null && stored.publishingId() >= 0) {
            return new PublishingIds(stored, stored.publishingId());
        }
        LOG.info("No publishing id in the stored offset: numbering stream messages from {} (the clock's microseconds)", nowMicros);
        return new PublishingIds(stored, nowMicros);
    }

    /** The highest id given so far. */
    long last() {
        return last;
    }

    /**
     * Whether {@code record} is an event of the stored offset's own transaction at or before the
     * stored position: Debezium may emit the tail of that transaction again on a restart, and those
     * events were confirmed before the offset was stored. Numbering them again would shift every
     * id after them and turn the broker's de-duplication into duplicates.
     */
    boolean alreadyStored(SourceRecord record) {
        if (stored == null || stored.txId() == null || record.sourceOffset() == null) {
            return false;
        }
        Map<String, ?> offset = record.sourceOffset();
        if (!Objects.equals(stored.txId(), number(offset.get("txId")))) {
            return false;
        }
        Long lsn = number(offset.get("lsn"));
        if (lsn == null) {
            return false;
        }
        long events = orZero(number(offset.get("lsn_events_processed")));
        boolean at = lsn < stored.lsn() || (lsn == stored.lsn() && events <= stored.eventsAtLsn());
        if (at && skipped++ == 0) {
            LOG.info("Debezium emitted again events of transaction {} that were confirmed before the offset was stored; they are not published again",
                    stored.txId());
        }
        return at;
    }

    /** Numbers {@code p}: an event gets the next id; anything else only carries the count reached. */
    void number(Publication p, boolean event) {
        if (event) {
            last++;
            p.number(last, last);
        }
        else {
            p.number(0, last);
        }
    }

    private static Long number(Object o) {
        return o instanceof Number n ? n.longValue() : null;
    }

    private static long orZero(Long l) {
        return l == null ? 0 : l;
    }
}
