package io.outboxrelay.inbox;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/** How often a handler failed on each message, and how long to wait before the next try. */
final class Attempts {

    /** Failed attempts are remembered per id for this many ids at most; an evicted id starts counting again. */
    private static final int REMEMBERED = 10_000;

    final int max;
    private final Duration first;
    private final Duration longest;
    private final Map<String, Integer> failures = new LinkedHashMap<>(16, 0.75f, true) {
        @Override
        protected boolean removeEldestEntry(Map.Entry<String, Integer> eldest) {
            return size() > REMEMBERED;
        }
    };

    Attempts(int max, Duration first, Duration longest) {
        this.max = max;
        this.first = first;
        this.longest = longest;
    }

    /** Counts one more failure of {@code key}; returns the count. */
    synchronized int failed(String key) {
        return failures.merge(key, 1, Integer::sum);
    }

    synchronized void forget(String key) {
        failures.remove(key);
    }

    /** The pause before try {@code attempt + 1}: the first pause, doubling, at most the longest. */
    Duration pause(int attempt) {
        Duration p = first.multipliedBy(1L << Math.min(Math.max(attempt, 1) - 1, 20));
        return p.compareTo(longest) > 0 ? longest : p;
    }
}
