package io.outboxrelay.config;

import java.time.Duration;

/** The {@code relay.*} settings: the service itself. */
public record RelaySettings(
        String name,
        FailurePolicy onUnroutable,
        FailurePolicy onInvalid,
        String deadLetterTable,
        Duration shutdownGrace,
        Duration restartBackoffInitial,
        Duration restartBackoffMax) {

    /** What to do with a message RabbitMQ returned, or a row the router flagged invalid. */
    public enum FailurePolicy {
        /** Write it to the dead-letter table and go on. */
        DEAD_LETTER,
        /** Stop the relay (the supervisor restarts it, and the same event fails again). */
        FAIL
    }
}
