package io.outboxrelay.deadletter;

import java.util.List;

/**
 * Which parked events to publish again: all of them, the ones with the given event ids, and/or the
 * ones whose reason contains a text.
 */
public record Redrive(List<String> eventIds, String reasonContains) {

    public static Redrive all() {
        return new Redrive(List.of(), null);
    }
}
