package io.outboxrelay.sink;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import org.junit.jupiter.api.Test;

import com.rabbitmq.client.AMQP;

import io.outboxrelay.message.OutgoingMessage;

/** The transitions of a message's fate: what may follow what, and what may be marked processed. */
class MessageFateTest {

    private static MessageFate event() {
        return MessageFate.of(null, new OutgoingMessage("x", "k", new AMQP.BasicProperties.Builder().messageId("m").build(), new byte[7]));
    }

    @Test
    void aConfirmedMessageBecomesDone() {
        MessageFate p = event();
        assertThat(p.state()).isEqualTo(MessageFate.State.PENDING);
        assertThat(p.markable()).isFalse();
        p.published(1);
        assertThat(p.state()).isEqualTo(MessageFate.State.IN_FLIGHT);
        assertThat(p.markable()).isFalse();
        p.acked();
        assertThat(p.state()).isEqualTo(MessageFate.State.CONFIRMED);
        p.done();
        assertThat(p.state()).isEqualTo(MessageFate.State.DONE);
        assertThat(p.bytes()).isEqualTo(7);
    }

    @Test
    void aReturnedMessageIsRefusedAtItsAckAndOnlyMarkableOnceParked() {
        MessageFate p = event();
        p.published(1);
        p.returned("unroutable: 312 NO_ROUTE");
        assertThat(p.markable()).isFalse();
        p.acked();
        assertThat(p.state()).isEqualTo(MessageFate.State.REFUSED);
        assertThat(p.refusal()).isEqualTo(MessageFate.Refusal.UNDELIVERABLE);
        assertThat(p.markable()).as("refused, but its dead letter is not written yet").isFalse();
        assertThatThrownBy(p::done).isInstanceOf(IllegalStateException.class).hasMessageContaining("REFUSED");
        p.parked();
        assertThat(p.markable()).isTrue();
        p.done();
        assertThat(p.reason()).isEqualTo("unroutable: 312 NO_ROUTE");
    }

    @Test
    void aNackOrALostChannelSendsItBackToPendingAndForgetsAReturn() {
        MessageFate p = event();
        p.published(1);
        p.returned("unroutable");
        p.rewound();
        assertThat(p.state()).isEqualTo(MessageFate.State.PENDING);
        assertThat(p.reason()).isNull();
        p.published(5);
        assertThat(p.sequence()).isEqualTo(5);
        p.acked();
        assertThat(p.state()).isEqualTo(MessageFate.State.CONFIRMED);
    }

    @Test
    void invalidRowsAndOversizedMessagesStartRefusedAndNeverPublish() {
        MessageFate invalid = MessageFate.invalid(null, "the payload column 'payload' is null");
        assertThat(invalid.state()).isEqualTo(MessageFate.State.REFUSED);
        assertThat(invalid.refusal()).isEqualTo(MessageFate.Refusal.INVALID);
        assertThatThrownBy(() -> invalid.published(1)).isInstanceOf(IllegalStateException.class);
        MessageFate large = event();
        large.refuse("too large");
        assertThatThrownBy(() -> large.published(1)).isInstanceOf(IllegalStateException.class);
        assertThat(large.markable()).isFalse();
    }

    @Test
    void aRecordThatIsNoEventIsMarkableAtOnce() {
        MessageFate heartbeat = MessageFate.ignored(null);
        assertThat(heartbeat.markable()).isTrue();
        assertThat(heartbeat.bytes()).isZero();
        heartbeat.done();
        assertThatThrownBy(heartbeat::done).as("marked once only").isInstanceOf(IllegalStateException.class);
    }

    @Test
    void aLateAckCannotConfirmWhatWasNeverPublished() {
        MessageFate p = event();
        assertThatThrownBy(p::acked).isInstanceOf(IllegalStateException.class).hasMessageContaining("PENDING");
        assertThatThrownBy(p::parked).isInstanceOf(IllegalStateException.class);
    }
}
