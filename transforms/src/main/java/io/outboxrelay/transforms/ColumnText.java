package io.outboxrelay.transforms;

import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.util.Date;
import java.util.HexFormat;

/**
 * An outbox column's value as header text: the one encoding behind every header the router derives
 * from a column (message id, type, correlation id, traceparent, the exchange and routing-key templates,
 * the key of a flagged row), so that a header reads the same whatever type the table gives the column.
 *
 * <p>Bytes become lowercase hex: they are not text in any known charset, hex keeps every byte, and it
 * is what a {@code bytea} event id has always been sent as (a consumer deduplicating on it must see the
 * same id after an upgrade). A decimal is written without an exponent and a date as an ISO-8601 instant,
 * since their {@code toString()} is neither stable nor what anyone routes on. Strings (uuids included,
 * which Debezium sends as strings) pass as they are; integers are written in decimal.
 */
final class ColumnText {

    private static final HexFormat HEX = HexFormat.of();

    private ColumnText() {
    }

    /** The text of {@code value}, or null for null. */
    static String of(Object value) {
        if (value == null) {
            return null;
        }
        if (value instanceof String text) {
            return text;
        }
        if (value instanceof byte[] bytes) {
            return HEX.formatHex(bytes);
        }
        if (value instanceof ByteBuffer buffer) {
            // duplicate(): reading must not move the position of a buffer the record still holds.
            byte[] bytes = new byte[buffer.remaining()];
            buffer.duplicate().get(bytes);
            return HEX.formatHex(bytes);
        }
        if (value instanceof BigDecimal decimal) {
            return decimal.toPlainString();
        }
        if (value instanceof Date date) {
            return date.toInstant().toString();
        }
        return value.toString();
    }
}
