package io.outboxrelay.deadletter;

import java.util.List;

/**
 * Which parked events to publish again: all of them, the ones with the given event ids, and/or the
 * ones whose reason contains a text.
 */
public record Redrive(List<String> eventIds, String reasonContains, boolean discard) {

    public Redrive(List<String> eventIds, String reasonContains) {
        this(eventIds, reasonContains, false);
    }

    public static Redrive all() {
        return new Redrive(List.of(), null);
    }

    /** Marks these events discarded instead of publishing them, and publishes what their aggregates held behind them. */
    public static Redrive discarding(List<String> eventIds) {
        return new Redrive(eventIds, null, true);
    }
}
