package io.outboxrelay.source;

import java.sql.SQLException;
import java.time.Instant;
import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.offsetstore.StoredOffsets;

/**
 * The PostgreSQL connector's offset as the relay stores it: the position Debezium resumes from,
 * the commit time it came from, how far the transaction that follows it was delivered, and the
 * stream sink's publishing id there.
 * <p>
 * The relay writes only positions at a transaction boundary ({@code lsn} = {@code lsn_commit}, no
 * {@code lsn_proc}; see {@code sink.ResumePositions}), which Debezium 3.6.1 resumes from without its
 * WAL position search; how much of the transaction after it was already delivered travels in the
 * relay's own keys ({@link #PART_TX_KEY}, …), so the relay itself can leave that part out when
 * Debezium sends the transaction again.
 *
 * @param lsn          where streaming resumes: the end of the last transaction delivered completely
 * @param partTx       the transaction after {@code lsn} that was partly delivered, or null
 * @param partLsn      the LSN of the last record of {@code partTx} delivered
 * @param partAtLsn    how many records of {@code partTx} at {@code partLsn} were delivered
 * @param publishingId the stream sink's count of events up to {@code lsn}, or -1 when none was stored
 * @param legacy       written with Debezium's own {@code lsn_proc} (by an older relay, or Debezium
 *                     itself): a position 3.6.1 may resume from wrongly
 */
public record StoredOffset(long lsn, long commitMicros, Long partTx, long partLsn, long partAtLsn, long publishingId, boolean legacy) {

    /** The stream sink's key in the connector's offset map; Debezium's loader reads its own keys and leaves this one alone. */
    public static final String PUBLISHING_ID_KEY = "outbox_relay_publishing_id";
    /** The transaction after the stored position that was partly delivered. */
    public static final String PART_TX_KEY = "outbox_relay_part_tx";
    /** The LSN of the last record of that transaction that was delivered. */
    public static final String PART_LSN_KEY = "outbox_relay_part_lsn";
    /** How many of its records at that LSN were delivered (a COPY writes many rows at one LSN). */
    public static final String PART_AT_LSN_KEY = "outbox_relay_part_at_lsn";

    private static final ObjectMapper JSON = new ObjectMapper();

    /** What the relay's offset store holds for {@code config}'s engine, or null when nothing is stored yet. */
    @SuppressWarnings({ "unchecked", "rawtypes" })
    public static StoredOffset of(RelayConfig config) throws SQLException {
        return from(StoredOffsets.read((Map) config.engineProperties()));
    }

    /** Parses the connector's offset JSON ({@code {"lsn":…,"ts_usec":…}}) from the first entry that has one, or null. */
    public static StoredOffset from(Map<String, String> offsets) {
        for (String value : offsets.values()) {
            if (value == null) {
                continue;
            }
            try {
                JsonNode node = JSON.readTree(value);
                if (node.hasNonNull("lsn")) {
                    return new StoredOffset(node.get("lsn").asLong(), node.path("ts_usec").asLong(0),
                            node.hasNonNull(PART_TX_KEY) ? node.get(PART_TX_KEY).asLong() : null,
                            node.path(PART_LSN_KEY).asLong(0), node.path(PART_AT_LSN_KEY).asLong(0),
                            node.path(PUBLISHING_ID_KEY).asLong(-1), node.hasNonNull("lsn_proc"));
                }
            }
            catch (JsonProcessingException e) {
                // Not the connector's offset (another engine's entry in the namespace); look further.
            }
        }
        return null;
    }

    /**
     * A legacy offset ({@code lsn_proc} inside a transaction, which 3.6.1 may resume from wrongly)
     * moved back to the boundary before its transaction: {@code lsn} = {@code lsn_commit}, no
     * {@code lsn_proc}. Debezium then sends that transaction again whole (with the same message ids);
     * nothing is skipped. Null when {@code json} needs no change or is not the connector's offset.
     */
    public static String asBoundary(String json) {
        try {
            JsonNode node = JSON.readTree(json);
            if (!(node instanceof com.fasterxml.jackson.databind.node.ObjectNode o) || !o.hasNonNull("lsn_proc") || !o.hasNonNull("lsn")) {
                return null;
            }
            long boundary = o.hasNonNull("lsn_commit") ? o.get("lsn_commit").asLong() : Math.min(o.get("lsn").asLong(), o.get("lsn_proc").asLong());
            o.remove("lsn_proc");
            o.remove("lsn_events_processed");
            o.put("lsn", boundary);
            o.put("lsn_commit", boundary);
            return JSON.writeValueAsString(o);
        }
        catch (JsonProcessingException e) {
            return null;
        }
    }

    /** When the source transaction of the stored position committed, or null when the offset does not say. */
    public Instant commitTime() {
        return commitMicros > 0 ? Instant.ofEpochSecond(0, commitMicros * 1_000) : null;
    }

    /** The LSN in PostgreSQL's own notation, e.g. {@code 0/16B3748}. */
    public String lsnText() {
        return Lsns.text(lsn);
    }
}
