package io.outboxrelay.config;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The row filter that gives a shard its aggregates: a hash of the aggregate id column, taken
 * modulo the shard count. {@code hashtext} is a built-in immutable function, which is what
 * PostgreSQL allows in a publication's row filter; every row matches exactly one shard's filter,
 * and all rows of one aggregate the same one, so each aggregate keeps its order in its shard.
 * The sign bit is masked off rather than {@code abs()} taken: {@code abs(-2147483648)} overflows.
 * A NULL aggregate id is hashed as the empty one: {@code hashtext(NULL)} is NULL, which no shard's
 * filter would match, and such a row would be neither sent nor parked nor logged by any shard.
 *
 * @param keyColumn the aggregate id column (the router's {@code table.field.event.key})
 */
public record ShardFilter(String keyColumn, int index, int count) {

    /**
     * What PostgreSQL prints back for it, e.g. {@code (((hashtext(COALESCE(aggregateid, ''::text)) & 2147483647) % 3) = 1},
     * or for a filter made before NULLs were placed, {@code ((hashtext((aggregateid)::text) & 2147483647) % 3) = 1}.
     */
    private static final Pattern PRINTED = Pattern.compile(
            "hashtext\\((?:COALESCE\\()?\\(?\"?([^\"),]+)\"?\\)?(?:::text)?(?:,\\s*''::text\\))?\\)\\s*&\\s*2147483647\\)\\s*%\\s*(\\d+)\\)\\s*=\\s*(\\d+)",
            Pattern.CASE_INSENSITIVE);

    public String expression() {
        return "(hashtext(coalesce(" + SqlIdentifiers.quote(keyColumn) + "::text, '')) & 2147483647) % " + count + " = " + index;
    }

    /** Whether a printed filter places rows with a NULL key too; one made by an older relay places them on no shard. */
    public static boolean placesNulls(String printed) {
        return printed != null && printed.toUpperCase(java.util.Locale.ROOT).contains("COALESCE(");
    }

    /** The filter a printed row filter stands for, or null when it is not one of these. */
    public static ShardFilter parse(String printed) {
        if (printed == null) {
            return null;
        }
        Matcher m = PRINTED.matcher(printed);
        return m.find() ? new ShardFilter(m.group(1), Integer.parseInt(m.group(3)), Integer.parseInt(m.group(2))) : null;
    }

    /** The same predicate for a plain query, e.g. retention's DELETE of this shard's rows only. */
    public String predicate() {
        return "(" + expression() + ")";
    }
}
