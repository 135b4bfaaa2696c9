package io.outboxrelay.source;

import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;

import io.outboxrelay.config.RelayConfig;

/**
 * Where PostgreSQL will resume, compared with where the relay stored that it should, before an
 * engine starts (and in {@code check}). PostgreSQL streams from the later of the two: a slot ahead of
 * the stored offset, or a slot made anew, means transactions in between are not sent again, and the
 * user should hear which and what to do. On a first start it says what {@code snapshot.mode=no_data}
 * will not send: the rows already in the outbox.
 */
public final class ResumeCheck {

    /** More rows than this are reported as "more than": counting a large outbox exactly is not worth a slow start. */
    static final long COUNT_LIMIT = 1_000_000;

    /** What was found. */
    public enum Verdict {
        /** No slot and no stored offset: streaming starts now; older rows are not sent unless a snapshot is asked for. */
        FIRST_START,
        /** The slot is at or behind the stored offset: PostgreSQL sends everything after the stored offset again. */
        RESUMES_FROM_STORED,
        /** The slot is ahead of the stored offset, or missing while an offset is stored: events in between are not sent again. */
        RESUMES_PAST_STORED,
        /** A slot with no stored offset (a reshard, offsets deleted): streaming starts where the slot is. */
        RESUMES_FROM_SLOT
    }

    /** The verdict and one line for each thing the user should know, each saying what to do. */
    public record Result(Verdict verdict, List<String> lines) {
        public boolean resumesPastStored() {
            return verdict == Verdict.RESUMES_PAST_STORED;
        }
    }

    private ResumeCheck() {
    }

    /**
     * @param slot   the relay's slot, or null when there is none
     * @param stored the stored offset, or null
     */
    public static Result of(SourceInspector db, RelayConfig config, SlotStatus slot, StoredOffset stored) throws SQLException {
        String database = config.database().database();
        String slotName = config.slotName();
        String snapshotMode = config.engineProperties().getProperty("snapshot.mode");
        List<String> lines = new ArrayList<>();
        if (slot != null && !database.equals(slot.database())) {
            // Slot names are the cluster's, not the database's: Debezium would try to make it and fail with "already exists".
            lines.add("replication slot " + slotName + " belongs to database " + slot.database() + ", not " + database
                    + ": give this relay a slot of its own (debezium.source.slot.name), or drop the other one if it is left over");
            return new Result(Verdict.RESUMES_FROM_SLOT, lines);
        }
        if (stored == null && slot == null) {
            if (snapshotMode == null || "no_data".equalsIgnoreCase(snapshotMode) || "never".equalsIgnoreCase(snapshotMode)) {
                for (String table : config.outboxTables()) {
                    long rows = db.rowsUpTo(table, COUNT_LIMIT);
                    if (rows > 0) {
                        lines.add((rows > COUNT_LIMIT ? "more than " + COUNT_LIMIT : Long.toString(rows)) + " row(s) already in " + table
                                + " will not be published: with debezium.source.snapshot.mode=" + (snapshotMode == null ? "no_data" : snapshotMode)
                                + " only rows committed after slot " + slotName + " is made are. To publish them, start this first time with"
                                + " debezium.source.snapshot.mode=initial, or once the relay runs: outbox-relay replay --config "
                                + "<file> --since <the oldest row's time>");
                    }
                }
            }
            return new Result(Verdict.FIRST_START, lines);
        }
        if (stored == null) {
            return new Result(Verdict.RESUMES_FROM_SLOT, lines);
        }
        String since = stored.commitTime() != null ? stored.commitTime().toString() : "<the stored offset's time>";
        if (slot == null) {
            lines.add("replication slot " + slotName + " does not exist, but an offset is stored (at " + stored.lsnText() + ", committed " + since
                    + "): the slot was dropped, and the new one starts at the current WAL position, so events committed since then are not published."
                    + " If that was not meant, publish them: outbox-relay replay --config <file> --since " + since);
            return new Result(Verdict.RESUMES_PAST_STORED, lines);
        }
        long confirmed = slot.confirmedFlushLsn() == null ? 0 : Lsns.parse(slot.confirmedFlushLsn());
        if (Lsns.after(confirmed, stored.lsn())) {
            lines.add("replication slot " + slotName + " is at " + slot.confirmedFlushLsn() + ", ahead of the stored offset " + stored.lsnText()
                    + ": PostgreSQL resumes from the slot, so transactions committed between the two are not sent again. The relay never confirms"
                    + " to the slot more than it stored, so the slot was advanced by other means (pg_replication_slot_advance, a reshard) or older"
                    + " offsets were restored. If those events were not delivered, publish them: outbox-relay replay --config <file>"
                    + " --since " + since);
            return new Result(Verdict.RESUMES_PAST_STORED, lines);
        }
        return new Result(Verdict.RESUMES_FROM_STORED, lines);
    }
}
