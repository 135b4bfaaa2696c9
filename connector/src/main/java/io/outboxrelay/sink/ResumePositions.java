package io.outboxrelay.sink;

import java.util.HashMap;
import java.util.Map;
import java.util.Objects;

import org.apache.kafka.connect.source.SourceRecord;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.debezium.schema.SchemaFactory;
import io.outboxrelay.source.StoredOffset;

/**
 * The offset stored for each record the sink marks processed: a position Debezium 3.6.1 resumes
 * from without skipping anything, and, beside it, how much of the transaction after it was
 * already delivered, so that the relay itself leaves that part out when the transaction comes
 * again.
 * <p>
 * Why not Debezium's own offset: with {@code lsn_proc} in it, 3.6.1 searches the WAL for the
 * stored LSN on restart and drops every event it passes on the way, which loses the rest of a
 * {@code COPY} group (its rows share one LSN, dbz#1554) and the earlier rows of a concurrent
 * transaction whose row happens to start at a stored commit's end (dbz#76/#51). Without
 * {@code lsn_proc} Debezium does no search: it streams from {@code lsn} and passes on everything
 * PostgreSQL sends, which is every transaction whose commit record starts at or after it. So every
 * offset written here has {@code lsn} = {@code lsn_commit} = a <em>boundary</em>: the end of the last
 * transaction (or non-transactional logical message) before the one being delivered, a place no
 * event of an undelivered transaction precedes. {@code lsn_commit} is also what Debezium confirms to
 * the slot, read back from the offset store, so the slot never passes the stored boundary.
 * <p>
 * The transaction after the boundary is sent again in full on restart. Its records come in WAL
 * order, so "delivered up to the {@code k}-th record at LSN {@code L}" ({@link StoredOffset#PART_TX_KEY}
 * and the keys beside it) names exactly the part already finished; {@link Position#finishedBefore}
 * tells the sink to leave those records out. A crash therefore repeats what was in flight, not a
 * whole transaction. The stream sink's publishing-id count is stored as it was at the boundary, so
 * the records sent again are numbered as they were the first time.
 * <p>
 * Used on the engine thread only, in source order, before each record is numbered.
 */
final class ResumePositions {

    private static final Logger LOG = LoggerFactory.getLogger(ResumePositions.class);

    // Debezium's offset keys (PostgresOffsetContext and SourceInfo; package-private or internal there).
    static final String LSN = "lsn";
    static final String LSN_PROC = "lsn_proc";
    static final String LSN_COMMIT = "lsn_commit";
    static final String LSN_EVENTS = "lsn_events_processed";
    static final String TX_ID = "txId";
    static final String MESSAGE_TYPE = "messageType";
    /** AbstractSourceInfo.SNAPSHOT_KEY: present while records come from a snapshot. */
    static final String SNAPSHOT = "snapshot";

    /**
     * Where to resume after a record, and whether the record was already finished before the
     * restart. The offset itself is built only when it is handed to Debezium: of a run of records
     * marked together, only the last one's is (see {@link PublishPipeline}).
     */
    static final class Position {
        /** No position is known yet: the record is not handed back to Debezium, so the stored offset stays where it is. */
        static final Position UNCHANGED = new Position(null, false, null, null, 0, 0, -1);

        private final Map<String, ?> source;
        private final boolean finishedBefore;
        /** The boundary to resume from; null keeps Debezium's own position (a snapshot's record). */
        private final Long boundary;
        private final Long partTx;
        private final long partLsn;
        private final long partAtLsn;
        /** The stream count at the boundary; -1 when the sink numbers nothing. */
        private final long ids;

        Position(Map<String, ?> source, boolean finishedBefore, Long boundary, Long partTx, long partLsn, long partAtLsn, long ids) {
            this.source = source;
            this.finishedBefore = finishedBefore;
            this.boundary = boundary;
            this.partTx = partTx;
            this.partLsn = partLsn;
            this.partAtLsn = partAtLsn;
            this.ids = ids;
        }

        boolean finishedBefore() {
            return finishedBefore;
        }

        /** Whether handing it to Debezium moves the stored offset. */
        boolean moves() {
            return source != null;
        }

        /** The offset to store, or null when the stored offset is to stay where it is. */
        Map<String, Object> offset() {
            if (source == null) {
                return null;
            }
            // The record's own offset, as Debezium made it: it carries none of the relay's keys, only Debezium's to drop.
            Map<String, Object> at = new HashMap<>(source);
            at.remove(LSN_PROC);
            at.remove(LSN_EVENTS);
            if (boundary != null) {
                at.put(LSN, boundary);
                at.put(LSN_COMMIT, boundary);
            }
            if (partTx != null) {
                at.put(StoredOffset.PART_TX_KEY, partTx);
                at.put(StoredOffset.PART_LSN_KEY, partLsn);
                at.put(StoredOffset.PART_AT_LSN_KEY, partAtLsn);
            }
            if (ids >= 0) {
                at.put(StoredOffset.PUBLISHING_ID_KEY, ids);
            }
            return at;
        }
    }

    private final StoredOffset stored;
    /** The records of the stored offset's partly delivered transaction that were finished may still come. */
    private boolean resuming;
    private long resumeSkipped;
    /** The end of the last transaction seen complete, and the count of events numbered before it (-1: none are); null until one is known. */
    private Long boundary;
    private long idsAtBoundary;
    /** The transaction after the boundary, and the last record of it seen: its LSN and its place among the records at that LSN. */
    private Long tx;
    private long txLsn;
    private long txAtLsn;

    /**
     * @param stored what the engine resumes from, or null on a first start
     * @param ids    the count of events numbered before the first record (the stream sink's), or -1 when the sink numbers nothing
     */
    ResumePositions(StoredOffset stored, long ids) {
        this.stored = stored;
        boolean fresh = stored != null && !stored.legacy();
        this.resuming = fresh && stored.partTx() != null;
        this.boundary = fresh ? stored.lsn() : null;
        this.idsAtBoundary = ids;
    }

    /**
     * PostgreSQL resumes past the stored offset (the slot is ahead of it): the stored transaction does
     * not come again, so nothing is left out, and the numbering goes on from {@code ids}.
     */
    void resumesPastStored(long ids) {
        resuming = false;
        idsAtBoundary = ids;
    }

    /** A fresh numbering was begun at {@code ids} (above the broker's last id) before any record came. */
    void numberedFrom(long ids) {
        idsAtBoundary = ids;
    }

    /** Where to resume after {@code record}; {@code ids} is the count of events numbered before it. */
    Position next(SourceRecord record, long ids) {
        Map<String, ?> offset = record == null ? null : record.sourceOffset();
        Long lsn = offset == null ? null : number(offset.get(LSN));
        if (lsn == null) {
            return Position.UNCHANGED;
        }
        if (offset.containsKey(SNAPSHOT)) {
            // A snapshot's rows share the snapshot's one position, and a snapshot cut short is taken again from its start in no
            // set order: nothing of it may be left out, and the position is Debezium's own, without the search.
            return new Position(offset, false, null, null, 0, 0, idsAtBoundary);
        }
        Long commit = number(offset.get(LSN_COMMIT));
        Long txId = number(offset.get(TX_ID));
        String type = offset.get(MESSAGE_TYPE) instanceof String s ? s : null;
        boolean finished = false;
        boolean heartbeat = SchemaFactory.get().isHeartBeatSchema(record.valueSchema());
        if ("COMMIT".equals(type) || txId == null) {
            // A transaction's end (its END record, or a heartbeat sent at its commit), or a non-transactional logical message
            // (the relay's own heartbeat message among them) or a heartbeat after one: complete where it stands.
            Long at = commit != null ? commit : heartbeat ? null : lsn;
            if (at != null) {
                atBoundary(at, ids);
            }
        }
        else if (!heartbeat) {
            // A heartbeat inside a transaction carries wherever the decoder is, and changes nothing here.
            if (!txId.equals(tx)) {
                // The first record of a transaction. Its lsn_commit is the end of what came before, unless it is a
                // transactional logical message, which Debezium 3.6.1 lets move lsn_commit to itself, inside its transaction.
                if (boundary == null || (!"MESSAGE".equals(type) && commit != null)) {
                    boundary = commit != null ? commit : lsn;
                    idsAtBoundary = ids;
                }
                tx = txId;
                txLsn = lsn;
                txAtLsn = 1;
            }
            else if (lsn == txLsn) {
                txAtLsn++;
            }
            else {
                txLsn = lsn;
                txAtLsn = 1;
            }
            finished = finishedBefore(txId, lsn);
        }
        if (boundary == null) {
            return Position.UNCHANGED;
        }
        if (tx != null) {
            return new Position(offset, finished, boundary, tx, txLsn, txAtLsn, idsAtBoundary);
        }
        if (resuming) {
            // The partly delivered transaction has not come again yet: what is known of it stays stored.
            return new Position(offset, finished, boundary, stored.partTx(), stored.partLsn(), stored.partAtLsn(), idsAtBoundary);
        }
        return new Position(offset, finished, boundary, null, 0, 0, idsAtBoundary);
    }

    private void atBoundary(long lsn, long ids) {
        boundary = lsn;
        idsAtBoundary = ids;
        tx = null;
    }

    /** Whether this record of the stored partly delivered transaction was finished before the restart. */
    private boolean finishedBefore(Long txId, long lsn) {
        if (!resuming || !Objects.equals(txId, stored.partTx())) {
            return false;
        }
        boolean finished = Long.compareUnsigned(lsn, stored.partLsn()) < 0 || (lsn == stored.partLsn() && txAtLsn <= stored.partAtLsn());
        if (finished) {
            resumeSkipped++;
            return true;
        }
        resuming = false;
        if (resumeSkipped > 0) {
            LOG.info("Transaction {} is sent again from its start: its first {} record(s) were delivered before the restart and are left out",
                    txId, resumeSkipped);
        }
        return false;
    }

    private static Long number(Object o) {
        return o instanceof Number n ? n.longValue() : null;
    }
}
