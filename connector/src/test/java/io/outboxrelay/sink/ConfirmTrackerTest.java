package io.outboxrelay.sink;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.metrics.RelayMetrics;

class ConfirmTrackerTest {

    private final ConfirmTracker tracker = new ConfirmTracker(RelayMetrics.inMemory());

    private MessageFate publish(long gen, long seq) {
        return publish(gen, seq, "m" + seq, "k", new byte[0]);
    }

    private MessageFate publish(long gen, long seq, String messageId, String routingKey, byte[] body) {
        MessageFate p = MessageFate.of(null, new OutgoingMessage("x", routingKey,
                new com.rabbitmq.client.AMQP.BasicProperties.Builder().messageId(messageId).build(), body));
        tracker.published(gen, seq, p);
        return p;
    }

    @Test
    void outOfOrderAndMultipleAcksConfirmExactlyWhatTheyCover() {
        long gen = tracker.newGeneration();
        MessageFate p1 = publish(gen, 1);
        MessageFate p2 = publish(gen, 2);
        MessageFate p3 = publish(gen, 3);
        MessageFate p4 = publish(gen, 4);
        tracker.ack(gen, 3, false);
        assertThat(p3.state()).isEqualTo(MessageFate.State.CONFIRMED);
        assertThat(p1.state()).isEqualTo(MessageFate.State.IN_FLIGHT);
        tracker.ack(gen, 2, true);
        assertThat(p1.state()).isEqualTo(MessageFate.State.CONFIRMED);
        assertThat(p2.state()).isEqualTo(MessageFate.State.CONFIRMED);
        assertThat(p4.state()).isEqualTo(MessageFate.State.IN_FLIGHT);
        assertThat(tracker.inFlight()).isEqualTo(1);
    }

    @Test
    void aConfirmBetweenLookingAndWaitingEndsTheWaitAtOnce() throws InterruptedException {
        long gen = tracker.newGeneration();
        publish(gen, 1);
        long seen = tracker.changes();
        // The confirm lands after the sink looked at the states but before it starts waiting.
        tracker.ack(gen, 1, false);
        long t0 = System.nanoTime();
        tracker.awaitChangeSince(seen, 10_000);
        assertThat((System.nanoTime() - t0) / 1_000_000).as("ms waited").isLessThan(5_000);
    }

    @Test
    void withoutAConfirmTheWaitLastsItsTimeout() throws InterruptedException {
        long gen = tracker.newGeneration();
        publish(gen, 1);
        long t0 = System.nanoTime();
        tracker.awaitChangeSince(tracker.changes(), 50);
        assertThat((System.nanoTime() - t0) / 1_000_000).as("ms waited").isGreaterThanOrEqualTo(45);
    }

    @Test
    void nackPutsTheMessageBackAndReportsAFailure() {
        long gen = tracker.newGeneration();
        MessageFate p1 = publish(gen, 1);
        tracker.nack(gen, 1, false);
        assertThat(p1.state()).isEqualTo(MessageFate.State.PENDING);
        assertThat(tracker.failure()).contains("nacked");
    }

    @Test
    void aReturnFollowedByItsAckRefusesTheMessage() {
        long gen = tracker.newGeneration();
        MessageFate p1 = publish(gen, 1);
        MessageFate p2 = publish(gen, 2);
        tracker.returned(gen, "m2", "x", "k", new byte[0], "unroutable: 312 NO_ROUTE");
        assertThat(p2.state()).isEqualTo(MessageFate.State.RETURNED);
        tracker.ack(gen, 2, true);
        assertThat(p2.reason()).isEqualTo("unroutable: 312 NO_ROUTE");
        assertThat(p2.state()).as("returned, then confirmed: to be parked").isEqualTo(MessageFate.State.REFUSED);
        assertThat(p1.state()).isEqualTo(MessageFate.State.CONFIRMED);
    }

    @Test
    void aReturnIsMatchedByItsRoutingAndBodyNotByTheMessageIdAlone() {
        long gen = tracker.newGeneration();
        // Two outbox rows with one id: the first is routed, the second goes nowhere.
        MessageFate routed = publish(gen, 1, "same", "orders", "{\"a\":1}".getBytes());
        MessageFate lost = publish(gen, 2, "same", "nowhere", "{\"a\":2}".getBytes());
        tracker.returned(gen, "same", "x", "nowhere", "{\"a\":2}".getBytes(), "unroutable: 312 NO_ROUTE");
        tracker.ack(gen, 2, true);
        assertThat(routed.state()).isEqualTo(MessageFate.State.CONFIRMED);
        assertThat(lost.state()).isEqualTo(MessageFate.State.REFUSED);
    }

    @Test
    void abandonedChannelsCallbacksAreIgnoredAndItsTailIsPending() {
        long gen = tracker.newGeneration();
        MessageFate p1 = publish(gen, 1);
        tracker.channelLost(gen, "connection reset");
        assertThat(tracker.failure()).isEqualTo("connection reset");
        assertThat(tracker.abandon()).containsExactly(p1);
        assertThat(p1.state()).isEqualTo(MessageFate.State.PENDING);
        assertThat(tracker.failure()).as("the abandoned channel's failure is forgotten").isNull();
        tracker.ack(gen, 1, true);
        assertThat(p1.state()).as("a late ack from the old channel").isEqualTo(MessageFate.State.PENDING);
        long next = tracker.newGeneration();
        assertThat(tracker.failure()).isNull();
        MessageFate again = publish(next, 1);
        tracker.ack(next, 1, false);
        assertThat(again.state()).isEqualTo(MessageFate.State.CONFIRMED);
    }

    @Test
    void oldestPublishTimeIsTracked() {
        long gen = tracker.newGeneration();
        assertThat(tracker.oldestPublishedAtNanos()).isEqualTo(-1);
        MessageFate p1 = publish(gen, 1);
        publish(gen, 2);
        assertThat(tracker.oldestPublishedAtNanos()).isEqualTo(p1.publishedAtNanos());
    }
}
