package io.outboxrelay.leadership;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;

import org.junit.jupiter.api.Test;

import io.outboxrelay.sink.PublishPermit;
import io.outboxrelay.sink.PublishPermit.Answer;

/** The publish permit's two deadlines, counted from when a renewal was sent, on this process's clock. */
class LeadershipTest {

    private static final Duration LEASE = Duration.ofMillis(2_000);
    private static final Duration PUBLISH_FOR = Duration.ofMillis(400);

    @Test
    void publishingPausesWhenARenewalIsOverdueAndEndsWithTheLease() throws Exception {
        Leadership leadership = new Leadership("r", LEASE, PUBLISH_FOR);
        AtomicLong lost = new AtomicLong(-1);
        leadership.onLost(lost::set);
        assertThat(leadership.permit(1).ask()).as("a standby").isEqualTo(Answer.ENDED);

        leadership.became(1, System.nanoTime(), "test");
        PublishPermit permit = leadership.permit(1);
        assertThat(permit.ask()).isEqualTo(Answer.GRANTED);
        assertThat(leadership.permit(2).ask()).as("another epoch's engine").isEqualTo(Answer.ENDED);

        Thread.sleep(PUBLISH_FOR.toMillis() + 100);
        assertThat(permit.ask()).as("two renewals missed").isEqualTo(Answer.PAUSED);
        assertThat(leadership.paused()).isTrue();
        assertThat(leadership.isLeader()).as("still the leader, only paused").isTrue();

        leadership.renewed(1, System.nanoTime());
        assertThat(permit.ask()).as("renewed again").isEqualTo(Answer.GRANTED);

        long sent = System.nanoTime();
        leadership.renewed(1, sent);
        Thread.sleep(LEASE.toMillis() + 100);
        assertThat(permit.ask()).as("the lease ran out by this process's clock").isEqualTo(Answer.ENDED);
        assertThat(leadership.expiredLocally()).isTrue();
        leadership.lost(1, "test");
        assertThat(lost.get()).isEqualTo(1);
        assertThat(permit.ask()).isEqualTo(Answer.ENDED);
    }

    @Test
    void aRenewalOfAnEarlierEpochChangesNothing() {
        Leadership leadership = new Leadership("r", LEASE, PUBLISH_FOR);
        long past = System.nanoTime() - LEASE.toNanos();
        leadership.became(2, past, "test");
        leadership.renewed(1, System.nanoTime());
        assertThat(leadership.permit(2).ask()).isEqualTo(Answer.ENDED);
    }
}
