package io.outboxrelay.sink;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

import com.rabbitmq.client.AMQP;

import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.source.StoredOffset;

/** Where the stream numbering begins and goes on: the same ids for the same events after every restart, never below the broker's. */
class PublishingIdsTest {

    private static MessageFate event() {
        return MessageFate.of(null, new OutgoingMessage("s", "k", new AMQP.BasicProperties.Builder().messageId("m").build(), new byte[1]));
    }

    private static StoredOffset storedAt(long publishingId) {
        return new StoredOffset(100, 0, null, 0, 0, publishingId, false);
    }

    @Test
    void aStoredCountIsGoneOnFromSoThatEventsSentAgainGetTheirFirstIds() {
        PublishingIds first = PublishingIds.from(storedAt(41), 9_999_999, "p");
        assertThat(first.fresh()).isFalse();
        MessageFate a = event();
        MessageFate heartbeat = event();
        MessageFate b = event();
        first.number(a, true);
        first.number(heartbeat, false);
        first.number(b, true);
        assertThat(a.publishingId()).isEqualTo(42);
        assertThat(heartbeat.publishingId()).as("what is not an event takes no id").isZero();
        assertThat(b.publishingId()).isEqualTo(43);

        // A restart from the same stored offset numbers the same events the same way.
        PublishingIds again = PublishingIds.from(storedAt(41), 1, "p");
        MessageFate a2 = event();
        again.number(a2, true);
        assertThat(a2.publishingId()).isEqualTo(a.publishingId());
    }

    @Test
    void withNoStoredCountTheNumberingBeginsAboveTheBrokersLastIdNotTheClock() {
        PublishingIds ids = PublishingIds.from(null, 5_000_000, "p");
        assertThat(ids.fresh()).isTrue();
        // A predecessor on a host whose clock ran ahead left ids far above this host's clock.
        ids.beginAbove(20_000_000);
        MessageFate p = event();
        ids.number(p, true);
        assertThat(p.publishingId()).isEqualTo(20_000_001);

        PublishingIds offsetsOfTheAmqpSink = PublishingIds.from(storedAt(-1), 7, "p");
        assertThat(offsetsOfTheAmqpSink.fresh()).as("an offset without a count is no count").isTrue();
    }

    @Test
    void raisingToTheBrokersLastIdOnlyEverRaises() {
        PublishingIds ids = PublishingIds.from(storedAt(100), 0, "p");
        ids.raiseTo(50);
        assertThat(ids.last()).isEqualTo(100);
        ids.raiseTo(250);
        assertThat(ids.last()).isEqualTo(250);
        MessageFate p = event();
        ids.number(p, true);
        assertThat(p.publishingId()).isEqualTo(251);
    }
}
