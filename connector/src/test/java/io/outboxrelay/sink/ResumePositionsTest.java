package io.outboxrelay.sink;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.HashMap;
import java.util.Map;

import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.source.SourceRecord;
import org.junit.jupiter.api.Test;

import io.outboxrelay.source.StoredOffset;

/**
 * The positions stored for records as Debezium 3.6.1's PostgreSQL connector emits them (offsets
 * shaped as its {@code PostgresOffsetContext} writes them): always a transaction boundary that
 * Debezium resumes from without its WAL search, and what of the next transaction is done.
 */
class ResumePositionsTest {

    private static final Schema DATA = SchemaBuilder.struct().name("shop.public.outbox_event.Envelope").build();
    private static final Schema HEARTBEAT = SchemaBuilder.struct().name("io.debezium.connector.common.Heartbeat").build();

    /** A change record of transaction {@code tx} at {@code lsn}, after a commit that ended at {@code commit} (null: none yet). */
    private static SourceRecord change(long tx, long lsn, Long commit, String type) {
        Map<String, Object> offset = new HashMap<>();
        offset.put("lsn", lsn);
        offset.put("lsn_proc", lsn);
        if (commit != null) {
            offset.put("lsn_commit", commit);
        }
        offset.put("txId", tx);
        offset.put("messageType", type);
        offset.put("ts_usec", 1_700_000_000_000_000L);
        return new SourceRecord(Map.of("server", "shop"), offset, "outbox.event.order", null, null, DATA, null);
    }

    private static SourceRecord insert(long tx, long lsn, Long commit) {
        return change(tx, lsn, commit, "INSERT");
    }

    /** A heartbeat sent when the commit ending at {@code commit} was processed. */
    private static SourceRecord commitHeartbeat(long tx, long commit) {
        Map<String, Object> offset = Map.of("lsn", commit, "lsn_proc", commit, "lsn_commit", commit, "txId", tx, "messageType", "COMMIT");
        return new SourceRecord(Map.of("server", "shop"), offset, "__debezium-heartbeat.shop", null, null, HEARTBEAT, null);
    }

    @Test
    void everyRowOfACopyGroupStoresTheBoundaryBeforeItsTransactionAndHowManyRowsAreDone() {
        ResumePositions positions = new ResumePositions(null, -1);
        for (int k = 1; k <= 5; k++) {
            Map<String, Object> at = positions.next(insert(7, 1_000, 500L), -1).offset();
            assertThat(at).doesNotContainKey("lsn_proc");
            assertThat(at).containsEntry("lsn", 500L).containsEntry("lsn_commit", 500L)
                    .containsEntry(StoredOffset.PART_TX_KEY, 7L).containsEntry(StoredOffset.PART_LSN_KEY, 1_000L)
                    .containsEntry(StoredOffset.PART_AT_LSN_KEY, (long) k);
            assertThat(at).doesNotContainKey(StoredOffset.PUBLISHING_ID_KEY);
        }
    }

    @Test
    void afterARestartAtRowThreeOfACopyGroupTheFirstThreeRowsAreLeftOutAndTheRestPublished() {
        StoredOffset stored = new StoredOffset(500, 0, 7L, 1_000, 3, -1, false);
        ResumePositions positions = new ResumePositions(stored, -1);
        assertThat(positions.next(insert(7, 1_000, 500L), -1).finishedBefore()).isTrue();
        assertThat(positions.next(insert(7, 1_000, 500L), -1).finishedBefore()).isTrue();
        ResumePositions.Position third = positions.next(insert(7, 1_000, 500L), -1);
        assertThat(third.finishedBefore()).isTrue();
        assertThat(third.offset()).containsEntry(StoredOffset.PART_AT_LSN_KEY, 3L).containsEntry("lsn", 500L);
        assertThat(positions.next(insert(7, 1_000, 500L), -1).finishedBefore()).as("row 4 of the group").isFalse();
        assertThat(positions.next(insert(7, 1_000, 500L), -1).finishedBefore()).as("nothing after row 4 either").isFalse();
        assertThat(positions.next(insert(7, 1_200, 500L), -1).finishedBefore()).isFalse();
    }

    @Test
    void afterARestartTheRowsOfTheStoredTransactionBeforeItsStoredLsnAreLeftOut() {
        StoredOffset stored = new StoredOffset(500, 0, 7L, 1_100, 1, -1, false);
        ResumePositions positions = new ResumePositions(stored, -1);
        assertThat(positions.next(insert(7, 900, 500L), -1).finishedBefore()).isTrue();
        assertThat(positions.next(insert(7, 1_000, 500L), -1).finishedBefore()).isTrue();
        assertThat(positions.next(insert(7, 1_100, 500L), -1).finishedBefore()).isTrue();
        assertThat(positions.next(insert(7, 1_200, 500L), -1).finishedBefore()).isFalse();
    }

    @Test
    void anotherTransactionSentFirstIsNeverLeftOut() {
        StoredOffset stored = new StoredOffset(500, 0, 7L, 1_100, 1, -1, false);
        ResumePositions positions = new ResumePositions(stored, -1);
        assertThat(positions.next(insert(6, 700, 500L), -1).finishedBefore()).isFalse();
        assertThat(positions.next(insert(7, 900, 800L), -1).finishedBefore()).isTrue();
    }

    @Test
    void aHeartbeatAtACommitStoresThatCommitWithNothingPartlyDone() {
        ResumePositions positions = new ResumePositions(null, -1);
        positions.next(insert(7, 1_000, 500L), -1);
        Map<String, Object> at = positions.next(commitHeartbeat(7, 1_300), -1).offset();
        assertThat(at).containsEntry("lsn", 1_300L).containsEntry("lsn_commit", 1_300L).doesNotContainKey("lsn_proc")
                .doesNotContainKey(StoredOffset.PART_TX_KEY);
    }

    /**
     * dbz#76/#51: stored at a commit's end C, a concurrent transaction whose row starts exactly at C.
     * The relay stores C without lsn_proc, so Debezium searches nothing, and a restart leaves nothing out.
     */
    @Test
    void aTransactionWithARowAtTheStoredCommitsEndIsSentWhole() {
        StoredOffset stored = new StoredOffset(1_300, 0, null, 0, 0, -1, false);
        ResumePositions positions = new ResumePositions(stored, -1);
        assertThat(positions.next(insert(8, 1_100, 1_300L), -1).finishedBefore()).isFalse();
        assertThat(positions.next(insert(8, 1_300, 1_300L), -1).finishedBefore()).isFalse();
        assertThat(positions.next(insert(8, 1_400, 1_300L), -1).finishedBefore()).isFalse();
    }

    @Test
    void aTransactionalMessageThatMovesLsnCommitInsideItsTransactionDoesNotMoveTheBoundary() {
        ResumePositions positions = new ResumePositions(null, -1);
        positions.next(commitHeartbeat(6, 400), -1);
        Map<String, Object> message = positions.next(change(7, 600, 600L, "MESSAGE"), -1).offset();
        assertThat(message).containsEntry("lsn", 400L);
        Map<String, Object> row = positions.next(insert(7, 700, 600L), -1).offset();
        assertThat(row).as("lsn_commit 600 is the message's, inside transaction 7").containsEntry("lsn", 400L);
        Map<String, Object> next = positions.next(insert(8, 900, 800L), -1).offset();
        assertThat(next).as("the next transaction starts after 7's commit").containsEntry("lsn", 800L);
    }

    @Test
    void aNonTransactionalMessageIsABoundary() {
        ResumePositions positions = new ResumePositions(null, -1);
        positions.next(insert(7, 1_000, 500L), -1);
        Map<String, Object> offset = new HashMap<>(Map.of("lsn", 1_500L, "lsn_proc", 1_500L, "lsn_commit", 1_500L, "messageType", "MESSAGE"));
        Map<String, Object> at = positions.next(new SourceRecord(Map.of("server", "shop"), offset, "shop.message", null, null, DATA, null), -1).offset();
        assertThat(at).containsEntry("lsn", 1_500L).doesNotContainKey(StoredOffset.PART_TX_KEY);
    }

    /** An idle outbox: the relay's heartbeat query emits a logical message, and the heartbeat after it moves the slot on. */
    @Test
    void aHeartbeatAfterANonTransactionalMessageIsABoundary() {
        ResumePositions positions = new ResumePositions(null, -1);
        positions.next(commitHeartbeat(7, 1_300), -1);
        Map<String, Object> offset = Map.of("lsn", 2_000L, "lsn_proc", 2_000L, "lsn_commit", 2_000L, "messageType", "MESSAGE");
        Map<String, Object> at = positions.next(new SourceRecord(Map.of("server", "shop"), offset, "__debezium-heartbeat.shop", null, null, HEARTBEAT, null), -1)
                .offset();
        assertThat(at).containsEntry("lsn", 2_000L).containsEntry("lsn_commit", 2_000L);
    }

    @Test
    void aHeartbeatInTheMiddleOfATransactionKeepsWhatIsDoneOfIt() {
        ResumePositions positions = new ResumePositions(null, -1);
        positions.next(insert(7, 1_000, 500L), -1);
        positions.next(insert(7, 1_100, 500L), -1);
        Map<String, Object> offset = Map.of("lsn", 1_100L, "lsn_proc", 1_100L, "lsn_commit", 500L, "txId", 7L, "messageType", "INSERT");
        Map<String, Object> at = positions.next(new SourceRecord(Map.of("server", "shop"), offset, "__debezium-heartbeat.shop", null, null, HEARTBEAT, null), -1)
                .offset();
        assertThat(at).containsEntry("lsn", 500L).containsEntry(StoredOffset.PART_LSN_KEY, 1_100L).containsEntry(StoredOffset.PART_AT_LSN_KEY, 1L);
    }

    @Test
    void beforeAnyBoundaryIsKnownNothingIsStored() {
        ResumePositions positions = new ResumePositions(null, -1);
        Map<String, Object> offset = Map.of("lsn", 900L, "messageType", "INSERT");
        assertThat(positions.next(new SourceRecord(Map.of("server", "shop"), offset, "__debezium-heartbeat.shop", null, null, HEARTBEAT, null), -1))
                .isSameAs(ResumePositions.Position.UNCHANGED);
    }

    @Test
    void theFirstTransactionOfAFirstStartResumesFromItsFirstRow() {
        ResumePositions positions = new ResumePositions(null, -1);
        assertThat(positions.next(insert(7, 1_000, null), -1).offset()).containsEntry("lsn", 1_000L).containsEntry("lsn_commit", 1_000L);
    }

    @Test
    void theStreamCountIsStoredAsItWasAtTheBoundarySoWhatIsSentAgainIsNumberedAgainAlike() {
        ResumePositions first = new ResumePositions(null, 100);
        assertThat(first.next(insert(7, 1_000, 500L), 100).offset()).containsEntry(StoredOffset.PUBLISHING_ID_KEY, 100L);
        Map<String, Object> second = first.next(insert(7, 1_100, 500L), 101).offset();
        assertThat(second).containsEntry(StoredOffset.PUBLISHING_ID_KEY, 100L).containsEntry(StoredOffset.PART_LSN_KEY, 1_100L);
        assertThat(first.next(commitHeartbeat(7, 1_300), 102).offset()).containsEntry(StoredOffset.PUBLISHING_ID_KEY, 102L);

        StoredOffset stored = new StoredOffset(500, 0, 7L, 1_100, 1, 100, false);
        ResumePositions again = new ResumePositions(stored, 100);
        assertThat(again.next(insert(7, 1_000, 500L), 100).finishedBefore()).isTrue();
        assertThat(again.next(insert(7, 1_100, 500L), 101).offset()).containsEntry(StoredOffset.PUBLISHING_ID_KEY, 100L);
    }

    @Test
    void aSlotAheadOfTheStoredOffsetLeavesNothingOut() {
        StoredOffset stored = new StoredOffset(500, 0, 7L, 1_100, 1, 100, false);
        ResumePositions positions = new ResumePositions(stored, 100);
        positions.resumesPastStored(250);
        ResumePositions.Position p = positions.next(insert(7, 1_000, 500L), 250);
        assertThat(p.finishedBefore()).isFalse();
        assertThat(p.offset()).containsEntry(StoredOffset.PUBLISHING_ID_KEY, 250L);
    }

    @Test
    void aSnapshotsRowsAreNeverLeftOutAndKeepDebeziumsPosition() {
        StoredOffset stored = new StoredOffset(500, 0, 7L, 1_000, 3, -1, false);
        ResumePositions positions = new ResumePositions(stored, -1);
        Map<String, Object> offset = new HashMap<>(Map.of("lsn", 1_000L, "txId", 7L, "snapshot", "INITIAL", "last_snapshot_record", false));
        for (int i = 0; i < 5; i++) {
            ResumePositions.Position p = positions.next(new SourceRecord(Map.of("server", "shop"), offset, "outbox.event.order", null, null, DATA, null), -1);
            assertThat(p.finishedBefore()).isFalse();
            assertThat(p.offset()).containsEntry("snapshot", "INITIAL").containsEntry("lsn", 1_000L).doesNotContainKey(StoredOffset.PART_TX_KEY);
        }
    }

    @Test
    void aLegacyOffsetIsMovedBackToTheBoundaryBeforeItsTransaction() {
        String legacy = "{\"lsn\":1000,\"lsn_proc\":1000,\"lsn_commit\":500,\"txId\":7,\"messageType\":\"INSERT\",\"ts_usec\":1}";
        String moved = StoredOffset.asBoundary(legacy);
        StoredOffset parsed = StoredOffset.from(Map.of("k", moved));
        assertThat(parsed.lsn()).isEqualTo(500);
        assertThat(parsed.legacy()).isFalse();
        assertThat(moved).doesNotContain("lsn_proc").contains("\"lsn_commit\":500");
        assertThat(StoredOffset.asBoundary(moved)).as("nothing more to do").isNull();
    }
}
