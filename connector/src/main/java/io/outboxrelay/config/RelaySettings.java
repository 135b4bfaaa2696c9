package io.outboxrelay.config;

import java.time.Duration;
import java.util.List;

/**
 * The {@code relay.*} settings: the service itself.
 *
 * @param name               the relay's name: {@code relay.name}, and for a shard {@code relay.name-<index>of<count>} (its slot,
 *                           publication, offsets, lease, metrics and dead letters are the shard's own)
 * @param publicationColumns the outbox columns the publication sends ({@code relay.publication.columns}); empty for all
 */
public record RelaySettings(
        String name,
        FailurePolicy onUnroutable,
        FailurePolicy onInvalid,
        String deadLetterTable,
        DeadLetterOrder deadLetterOrder,
        Duration shutdownGrace,
        Duration restartBackoffInitial,
        Duration restartBackoffMax,
        Http http,
        Duration metricsPoll,
        LogFormat logFormat,
        List<String> publicationColumns,
        Leadership leadership,
        Retention retention,
        Shard shard) {

    /**
     * {@code relay.shard.*}: which share of the aggregates this relay publishes; {@code count} 1 is
     * the whole outbox, unsharded.
     *
     * @param baseName {@code relay.name} as configured, the same for every shard
     */
    public record Shard(int index, int count, String baseName) {

        public static Shard none(String baseName) {
            return new Shard(0, 1, baseName);
        }

        public boolean sharded() {
            return count > 1;
        }

        /** The shard's own name: {@code relay.name-<index>of<count>}; the count is in it so that sets of different sizes never share a slot. */
        public static String name(String baseName, int index, int count) {
            return count == 1 ? baseName : baseName + "-" + index + "of" + count;
        }

        @Override
        public String toString() {
            return sharded() ? "shard " + index + " of " + count : "unsharded";
        }
    }

    /** {@code relay.outbox.retention.*}: deleting relayed outbox rows; {@code age} zero is off. */
    public record Retention(Duration age, Duration interval, int batch, String column) {
        public boolean enabled() {
            return !age.isZero();
        }
    }

    /**
     * {@code relay.standby}, {@code relay.leader.*}: hot standbys and the lease they contend for.
     *
     * @param walsenderTimeout the replication connection's {@code wal_sender_timeout}; zero leaves the server's
     */
    public record Leadership(boolean standby, Duration lease, Duration renew, String table, Duration walsenderTimeout) {

        /** How long a leader that no longer streams may go without renewing before a standby takes over early: three renewals. */
        public Duration silentFor() {
            return renew.multipliedBy(3);
        }

        /**
         * How long after the last successful renewal was sent a leader may publish: two renewals, one
         * short of {@link #silentFor()}, so that an early takeover (judged by the server's clock, from
         * when the renewal arrived) can only come after the old leader stopped by its own.
         */
        public Duration publishFor() {
            return renew.multipliedBy(2);
        }
    }

    /** Where the health and metrics endpoints listen; {@code enabled=false} serves none. */
    public record Http(boolean enabled, String host, int port) {
    }

    /** {@code relay.log.format}: plain lines for people, or one JSON object per line for log pipelines. */
    public enum LogFormat {
        TEXT, JSON
    }

    /** {@code relay.dead-letter.order}: whether an aggregate's later events wait behind its parked one. */
    public enum DeadLetterOrder {
        /** Parked behind it, and re-driven after it: order per aggregate holds. */
        KEEP_AGGREGATE,
        /** Delivered; the parked event comes after them when re-driven. */
        NONE
    }

    /** What to do with a message RabbitMQ returned, or a row the router flagged invalid. */
    public enum FailurePolicy {
        /** Write it to the dead-letter table and go on. */
        DEAD_LETTER,
        /** Stop the relay (the supervisor restarts it, and the same event fails again). */
        FAIL
    }
}
