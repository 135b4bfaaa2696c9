package io.outboxrelay.testing;

import java.time.Duration;

/**
 * Waits on progress, not on a wall-clock bound: a wait fails when what it watches has stopped
 * moving for a while, however long it has been moving. A bound sized for one machine (60 s for what
 * takes 40 s on a quiet one) fails on a slower or busier one although nothing is wrong; a count that
 * stands still for the stall time is wrong on any machine.
 *
 * Written by hand because Awaitility bounds a wait only by the wall clock; its polling is what
 * this does, with the watched value's last change as the clock.
 */
public final class Progress {

    /** A value to watch, read each poll; it may fail like the JDBC or HTTP call it makes. */
    @FunctionalInterface
    public interface Probe {
        long read() throws Exception;
    }

    /** What a wait is done on: usually a comparison of what {@link Probe} read. */
    @FunctionalInterface
    public interface Done {
        boolean test(long value) throws Exception;
    }

    /**
     * The longest any wait may take even while its value keeps moving, so that one moving without
     * end (a count of duplicates, say) ends the test rather than the CI run.
     */
    private static final Duration CEILING = Duration.ofMinutes(15);
    private static final long POLL_MILLIS = 100;

    private Progress() {
    }

    /** Waits until {@code value} reaches at least {@code target}; fails when it stands still for {@code stall}. */
    public static long atLeast(String what, long target, Duration stall, Probe value) throws InterruptedException {
        return until(what + " to reach " + target, stall, value, v -> v >= target);
    }

    /** Waits until {@code value} is exactly {@code target}; fails when it stands still for {@code stall} elsewhere. */
    public static long exactly(String what, long target, Duration stall, Probe value) throws InterruptedException {
        return until(what + " to be " + target, stall, value, v -> v == target);
    }

    /**
     * Waits until {@code done} holds for {@code value}; fails naming {@code what} and the value it
     * stood at when {@code value} has not changed for {@code stall}. A probe that throws counts as no
     * change (a server being restarted under the test), its last error kept for the failure.
     * Returns the value that satisfied {@code done}.
     */
    public static long until(String what, Duration stall, Probe value, Done done) throws InterruptedException {
        long start = System.nanoTime();
        long changedAt = start;
        Long last = null;
        Exception lastError = null;
        while (true) {
            long now = System.nanoTime();
            try {
                long v = value.read();
                if (done.test(v)) {
                    return v;
                }
                if (last == null || v != last) {
                    last = v;
                    changedAt = now;
                }
                lastError = null;
            }
            catch (InterruptedException e) {
                throw e;
            }
            catch (Exception e) {
                lastError = e;
            }
            if (now - changedAt > stall.toNanos() || now - start > CEILING.toNanos()) {
                String why = now - start > CEILING.toNanos() ? "still moving after " + CEILING.toMinutes() + " min"
                        : "no progress for " + stall.toSeconds() + " s";
                AssertionError failure = new AssertionError("waited for " + what + ": " + why + ", standing at " + (last == null ? "no value" : last)
                        + " after " + Duration.ofNanos(now - start).toSeconds() + " s" + (lastError == null ? "" : " (last read failed: " + lastError + ")"));
                if (lastError != null) {
                    failure.initCause(lastError);
                }
                throw failure;
            }
            Thread.sleep(POLL_MILLIS);
        }
    }
}
