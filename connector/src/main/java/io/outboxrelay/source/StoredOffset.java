package io.outboxrelay.source;

import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * The PostgreSQL connector's offset as stored: the LSN it resumes from and the commit time it came
 * from, the transaction and the events counted at that LSN, and the stream sink's publishing id.
 *
 * @param txId         the transaction of the stored position, or null
 * @param eventsAtLsn  Debezium's {@code lsn_events_processed}: events already emitted at {@code lsn}
 * @param publishingId the highest stream publishing id given up to this offset, or -1 when none was stored
 */
public record StoredOffset(long lsn, long commitMicros, Long txId, long eventsAtLsn, long publishingId) {

    /** The stream sink's key in the connector's offset map; Debezium's loader reads its own keys and leaves this one alone. */
    public static final String PUBLISHING_ID_KEY = "outbox_relay_publishing_id";

    private static final ObjectMapper JSON = new ObjectMapper();

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
                            node.hasNonNull("txId") ? node.get("txId").asLong() : null, node.path("lsn_events_processed").asLong(0),
                            node.path(PUBLISHING_ID_KEY).asLong(-1));
                }
            }
            catch (JsonProcessingException e) {
                // Not the connector's offset (another engine's entry in the namespace); look further.
            }
        }
        return null;
    }

    /** The LSN in PostgreSQL's own notation, e.g. {@code 0/16B3748}. */
    public String lsnText() {
        return Long.toHexString(lsn >>> 32).toUpperCase() + "/" + Long.toHexString(lsn & 0xFFFFFFFFL).toUpperCase();
    }
}
