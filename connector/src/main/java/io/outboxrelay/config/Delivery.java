package io.outboxrelay.config;

import java.time.Duration;

/**
 * What the publish pipeline needs of either sink: the confirm time-out, the window and the
 * back-off, with the names of the keys that set them, so that its messages name the key to change
 * in the sink that is configured.
 */
public record Delivery(
        String prefix,
        Duration ackTimeout,
        String ackTimeoutKey,
        int maxInFlight,
        long maxInFlightBytes,
        int maxMessageBytes,
        Duration retryBackoffInitial,
        Duration retryBackoffMax) {
}
