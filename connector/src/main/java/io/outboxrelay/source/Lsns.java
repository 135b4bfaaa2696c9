package io.outboxrelay.source;

/** PostgreSQL's {@code pg_lsn} notation ({@code 16/B374D848}) and the 64-bit numbers Debezium's offsets hold. */
public final class Lsns {

    private Lsns() {
    }

    /** {@code lsn} as PostgreSQL writes it, e.g. {@code 0/16B3748}. */
    public static String text(long lsn) {
        return Long.toHexString(lsn >>> 32).toUpperCase() + "/" + Long.toHexString(lsn & 0xFFFFFFFFL).toUpperCase();
    }

    /** The number behind PostgreSQL's notation. */
    public static long parse(String text) {
        int slash = text.indexOf('/');
        if (slash < 0) {
            throw new IllegalArgumentException("not an LSN: " + text);
        }
        return (Long.parseLong(text.substring(0, slash), 16) << 32) | Long.parseLong(text.substring(slash + 1), 16);
    }

    /** Whether {@code a} is after {@code b}; LSNs compare unsigned. */
    public static boolean after(long a, long b) {
        return Long.compareUnsigned(a, b) > 0;
    }
}
