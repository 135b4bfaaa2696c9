package io.outboxrelay.leadership;

import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.BooleanSupplier;
import java.util.function.LongConsumer;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.outboxrelay.sink.PublishPermit;

/**
 * This process's role for its relay name, and the one owner of it: every change (standby to
 * leader, a renewal, stepping down) goes through here, under its monitor. The sink asks
 * {@link #permit(long)} before every publish; that answer comes from this process's own monotonic
 * clock, counted from when the last successful renewal was <em>sent</em>, which is never later than
 * when the server recorded it — so a relay frozen past its lease publishes nothing once it wakes,
 * before it has even asked the database.
 * <p>
 * Two deadlines run from that renewal. Publishing pauses after {@code publishFor} (two renewals):
 * a standby may take over early, three renewals after the server saw the last one when the slot is
 * idle, and by then this process has stopped by its own clock. The lease itself runs out after
 * {@code relay.leader.lease.ms}; then this process steps down.
 */
public final class Leadership {

    private static final Logger LOG = LoggerFactory.getLogger(Leadership.class);

    public enum Role {
        STANDBY, LEADER
    }

    private final String relayName;
    private final Duration lease;
    private final Duration publishFor;
    private final CopyOnWriteArrayList<LongConsumer> onLost = new CopyOnWriteArrayList<>();
    private volatile Role role = Role.STANDBY;
    private volatile long epoch;
    private volatile long deadlineNanos;
    private volatile long publishUntilNanos;
    private volatile Instant since = Instant.now();
    private volatile String standingBy;
    private volatile long changes;
    private volatile boolean contending;

    public Leadership(String relayName, Duration lease, Duration publishFor) {
        this.relayName = relayName;
        this.lease = lease;
        this.publishFor = publishFor;
    }

    public Role role() {
        return role;
    }

    public boolean isLeader() {
        return role == Role.LEADER;
    }

    /** The epoch held, or last held; 0 before the first. */
    public long epoch() {
        return epoch;
    }

    /** When the current role began. */
    public Instant since() {
        return since;
    }

    /** How often the role changed. */
    public long changes() {
        return changes;
    }

    /** Who leads while this process stands by, as last seen; null when not known. */
    public String standingBy() {
        return standingBy;
    }

    /**
     * The sink's permit under {@code heldEpoch}: granted while this process leads with it and
     * renewed it lately, paused while a renewal is overdue, ended once it does not lead with it or
     * the lease ran out by its own clock. Per epoch: an engine of an earlier lease that still hangs
     * somewhere may never publish under a later one.
     */
    public PublishPermit permit(long heldEpoch) {
        return () -> {
            long now = System.nanoTime();
            if (!leads(heldEpoch) || now - deadlineNanos >= 0) {
                return PublishPermit.Answer.ENDED;
            }
            return now - publishUntilNanos < 0 ? PublishPermit.Answer.GRANTED : PublishPermit.Answer.PAUSED;
        };
    }

    /** Whether publishing is paused for an overdue renewal while this process still leads. */
    boolean paused() {
        long now = System.nanoTime();
        return role == Role.LEADER && now - deadlineNanos < 0 && now - publishUntilNanos >= 0;
    }

    /** Milliseconds since the last successful renewal was sent (or the lease taken). */
    long millisSinceRenewal() {
        return (System.nanoTime() - (deadlineNanos - lease.toNanos())) / 1_000_000;
    }

    /** Whether the keeper may take the lease: only while the supervisor waits for it, with no engine of an earlier lease still stopping. */
    public boolean contending() {
        return contending;
    }

    public void contend(boolean value) {
        contending = value;
    }

    /** Whether {@code heldEpoch} is still this process's lease. */
    public boolean leads(long heldEpoch) {
        return role == Role.LEADER && epoch == heldEpoch;
    }

    /** Runs {@code listener} with the epoch lost, on the thread that noticed, whenever this process steps down. */
    public void onLost(LongConsumer listener) {
        onLost.add(listener);
    }

    synchronized void became(long newEpoch, long sentNanos, String why) {
        role = Role.LEADER;
        epoch = newEpoch;
        deadlineNanos = sentNanos + lease.toNanos();
        publishUntilNanos = sentNanos + publishFor.toNanos();
        since = Instant.now();
        standingBy = null;
        changes++;
        LOG.info("Became the leader of relay '{}' (epoch {}): {}", relayName, newEpoch, why);
        notifyAll();
    }

    synchronized void renewed(long heldEpoch, long sentNanos) {
        if (leads(heldEpoch)) {
            deadlineNanos = sentNanos + lease.toNanos();
            publishUntilNanos = sentNanos + publishFor.toNanos();
        }
    }

    /** True when the lease ran out by this process's clock without a renewal. */
    boolean expiredLocally() {
        return role == Role.LEADER && System.nanoTime() - deadlineNanos >= 0;
    }

    void standingBy(String leader) {
        standingBy = leader;
    }

    /** Steps down from {@code heldEpoch}, if that is still the lease held; says why. */
    void lost(long heldEpoch, String why) {
        synchronized (this) {
            if (!leads(heldEpoch)) {
                return;
            }
            role = Role.STANDBY;
            since = Instant.now();
            changes++;
            LOG.warn("Stepping down as the leader of relay '{}' (epoch {}): {}; publishing stopped, waiting as a standby", relayName, heldEpoch, why);
        }
        onLost.forEach(l -> l.accept(heldEpoch));
    }

    /** Gives the lease up on a graceful stop: nothing is published from here on. */
    synchronized void resign() {
        if (role == Role.LEADER) {
            role = Role.STANDBY;
            since = Instant.now();
            changes++;
        }
        notifyAll();
    }

    /** Waits until this process leads, at most {@code max}; returns the epoch, or -1 when it does not lead (yet) or {@code stopping} said to give up. */
    public synchronized long awaitLeader(BooleanSupplier stopping, Duration max) throws InterruptedException {
        long deadline = System.nanoTime() + max.toNanos();
        while (role != Role.LEADER && !stopping.getAsBoolean() && System.nanoTime() - deadline < 0) {
            wait(200);
        }
        return role == Role.LEADER ? epoch : -1;
    }
}
