package io.outboxrelay.transforms;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The W3C {@code traceparent} in a tracing column. The column holds either the header itself
 * ({@code 00-<trace-id>-<span-id>-<flags>}) or, as Debezium's Quarkus outbox extension writes it,
 * a properties text with a {@code traceparent=} line.
 */
final class TraceParent {

    private static final Pattern TRACEPARENT = Pattern.compile("(?:^|[\\s;])(?:traceparent\\s*[=:]\\s*)?([0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2})(?:$|[\\s;])");

    private TraceParent() {
    }

    /** The traceparent in {@code text} (a column's {@link ColumnText}), or null when there is none. */
    static String find(String text) {
        if (text == null) {
            return null;
        }
        Matcher m = TRACEPARENT.matcher(text);
        return m.find() ? m.group(1) : null;
    }
}
