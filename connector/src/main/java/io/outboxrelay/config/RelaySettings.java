package io.outboxrelay.config;

import java.time.Duration;
import java.util.List;

/**
 * The {@code relay.*} settings: the service itself.
 *
 * @param publicationColumns the outbox columns the publication sends ({@code relay.publication.columns}); empty for all
 */
public record RelaySettings(
        String name,
        FailurePolicy onUnroutable,
        FailurePolicy onInvalid,
        String deadLetterTable,
        Duration shutdownGrace,
        Duration restartBackoffInitial,
        Duration restartBackoffMax,
        Http http,
        Duration metricsPoll,
        LogFormat logFormat,
        List<String> publicationColumns,
        Leadership leadership,
        Retention retention) {

    /** {@code relay.outbox.retention.*}: deleting relayed outbox rows; {@code age} zero is off. */
    public record Retention(Duration age, Duration interval, int batch, String column) {
        public boolean enabled() {
            return !age.isZero();
        }
    }

    /**
     * {@code relay.standby}, {@code relay.leader.*}: hot standbys and the lease they contend for.
     *
     * @param silentFor how long a leader that no longer streams may go without renewing before a standby takes over early
     */
    public record Leadership(boolean standby, Duration lease, Duration renew, String table) {
        public Duration silentFor() {
            return renew.multipliedBy(3);
        }
    }

    /** Where the health and metrics endpoints listen; {@code enabled=false} serves none. */
    public record Http(boolean enabled, String host, int port) {
    }

    /** {@code relay.log.format}: plain lines for people, or one JSON object per line for log pipelines. */
    public enum LogFormat {
        TEXT, JSON
    }

    /** What to do with a message RabbitMQ returned, or a row the router flagged invalid. */
    public enum FailurePolicy {
        /** Write it to the dead-letter table and go on. */
        DEAD_LETTER,
        /** Stop the relay (the supervisor restarts it, and the same event fails again). */
        FAIL
    }
}
