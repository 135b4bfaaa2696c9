package io.outboxrelay.transforms;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

/**
 * Checks a payload that Debezium's JSON expansion left as a string. Debezium only logs a warning
 * then, and the raw text would be published as {@code application/json}; we need to know whether it
 * is JSON at all. Runs only on that fallback path, never for payloads Debezium expanded.
 */
final class JsonPayload {

    private static final ObjectMapper MAPPER = new ObjectMapper();

    private JsonPayload() {
    }

    /** @throws InvalidOutboxEventException when {@code text} is not one JSON document */
    static void requireValid(String text, String column) {
        try {
            JsonNode node = MAPPER.readTree(text);
            if (node == null || node.isMissingNode()) {
                throw new InvalidOutboxEventException("the payload column '" + column + "' is empty, which is not valid JSON (table.expand.json.payload is on)");
            }
        }
        catch (JacksonException e) {
            throw new InvalidOutboxEventException("the payload column '" + column + "' is not valid JSON (table.expand.json.payload is on): "
                    + e.getOriginalMessage());
        }
    }
}
