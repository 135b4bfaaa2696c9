package io.outboxrelay.source;

import java.util.Map;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/** The PostgreSQL connector's offset as stored: the LSN it resumes from and the commit time it came from. */
public record StoredOffset(long lsn, long commitMicros) {

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
                    return new StoredOffset(node.get("lsn").asLong(), node.path("ts_usec").asLong(0));
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
