package io.outboxrelay.offsetstore;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.sql.SQLException;
import java.util.Map;
import java.util.TreeMap;

/**
 * Reads what a store has written for one namespace, without starting a store: for status reports
 * and metrics, which must never write.
 */
public final class StoredOffsets {

    private StoredOffsets() {
    }

    /**
     * The stored offsets as JSON text, key to value, of the namespace the given engine properties
     * configure (the same {@code offset.storage.postgres.*} keys and defaults as the store); empty
     * before the store has created its table.
     */
    public static Map<String, String> read(Map<String, ?> engineProperties) throws SQLException {
        PostgresOffsetStoreConfig config = PostgresOffsetStoreConfig.from(engineProperties);
        Map<String, String> offsets = new TreeMap<>();
        try (OffsetTable table = new OffsetTable(config)) {
            for (Map.Entry<ByteBuffer, ByteBuffer> e : table.load().entrySet()) {
                offsets.put(text(e.getKey()), e.getValue() == null ? null : text(e.getValue()));
            }
        }
        catch (SQLException e) {
            if (!"42P01".equals(e.getSQLState())) {
                throw e;
            }
        }
        return offsets;
    }

    /**
     * Writes {@code offsets} (key to value, as JSON text, as {@link #read} returns them) into the
     * namespace the given engine properties configure, fenced by their lease epoch when they name one,
     * as the store itself would: for a tool or a start-up step that must rewrite a stored offset
     * before an engine reads it.
     */
    public static void write(Map<String, ?> engineProperties, Map<String, String> offsets) throws SQLException {
        PostgresOffsetStoreConfig config = PostgresOffsetStoreConfig.from(engineProperties);
        Map<ByteBuffer, ByteBuffer> entries = new java.util.HashMap<>();
        offsets.forEach((k, v) -> entries.put(ByteBuffer.wrap(k.getBytes(StandardCharsets.UTF_8)),
                v == null ? null : ByteBuffer.wrap(v.getBytes(StandardCharsets.UTF_8))));
        try (OffsetTable table = new OffsetTable(config)) {
            table.write(entries);
        }
    }

    /** The table the given engine properties store offsets in. */
    public static String table(Map<String, ?> engineProperties) {
        return PostgresOffsetStoreConfig.from(engineProperties).table();
    }

    private static String text(ByteBuffer buffer) {
        byte[] bytes = new byte[buffer.remaining()];
        buffer.duplicate().get(bytes);
        return new String(bytes, StandardCharsets.UTF_8);
    }
}
