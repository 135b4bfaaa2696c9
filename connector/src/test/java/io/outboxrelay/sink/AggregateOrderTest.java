package io.outboxrelay.sink;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayDeque;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.source.SourceRecord;
import org.junit.jupiter.api.Test;

import com.rabbitmq.client.AMQP;

import io.debezium.engine.ChangeEvent;
import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.deadletter.DeadLetterTable;

/** What {@link AggregateOrder} lets go, keeps waiting and holds, for records whose fates are set by hand. */
class AggregateOrderTest {

    /** A table with nothing parked, that counts how often it is asked. */
    private static final class Table implements AggregateOrder.HeldLookup {
        Map<String, String> first = Map.of();
        Set<String> parkedEvents = Set.of();
        final AtomicInteger lookups = new AtomicInteger();
        boolean any;

        @Override
        public DeadLetterTable.Held held(Collection<String> aggregates, Collection<String> events) {
            lookups.incrementAndGet();
            return new DeadLetterTable.Held(first, parkedEvents);
        }

        @Override
        public boolean anyHeld() {
            return any;
        }
    }

    private static MessageFate event(String aggregate, String id) {
        SourceRecord record = new SourceRecord(null, null, "outbox.event.order", null, aggregate == null ? null : Schema.STRING_SCHEMA, aggregate,
                Schema.STRING_SCHEMA, "{}");
        ChangeEvent<SourceRecord, SourceRecord> event = new ChangeEvent<>() {
            @Override
            public SourceRecord key() {
                return record;
            }

            @Override
            public SourceRecord value() {
                return record;
            }

            @Override
            public String destination() {
                return record.topic();
            }

            @Override
            public Integer partition() {
                return null;
            }
        };
        return MessageFate.of(event, new OutgoingMessage("x", "k", new AMQP.BasicProperties.Builder().messageId(id).build(), new byte[3]));
    }

    @Test
    void overAmqpAnAggregatesNextEventWaitsForItsConfirmWhileOtherAggregatesGo() throws Exception {
        AggregateOrder order = AggregateOrder.keep(new Table(), true);
        MessageFate a1 = event("A", "a1");
        MessageFate a2 = event("A", "a2");
        MessageFate b1 = event("B", "b1");
        order.appended(List.of(a1, a2, b1));
        assertThat(order.verdict(a1)).isEqualTo(AggregateOrder.Verdict.PUBLISH);
        a1.published(1);
        assertThat(order.verdict(a2)).isEqualTo(AggregateOrder.Verdict.WAIT);
        order.await(a2);
        assertThat(order.verdict(b1)).isEqualTo(AggregateOrder.Verdict.PUBLISH);
        assertThat(order.waitingCount()).isEqualTo(1);

        ArrayDeque<MessageFate> unpublished = new ArrayDeque<>();
        order.releaseSettled(unpublished);
        assertThat(unpublished).as("a1 is not confirmed yet").isEmpty();
        a1.acked();
        order.releaseSettled(unpublished);
        assertThat(unpublished).containsExactly(a2);
        assertThat(order.waitingCount()).isZero();
        assertThat(order.verdict(a2)).isEqualTo(AggregateOrder.Verdict.PUBLISH);
    }

    @Test
    void anEventBehindAReturnedOneIsHeldBehindItAndSoIsTheOneBehindThat() throws Exception {
        AggregateOrder order = AggregateOrder.keep(new Table(), true);
        MessageFate a1 = event("A", "a1");
        MessageFate a2 = event("A", "a2");
        MessageFate a3 = event("A", "a3");
        order.appended(List.of(a1, a2, a3));
        order.verdict(a1);
        a1.published(1);
        order.await(a2);
        a1.returned("unroutable");
        a1.acked();
        ArrayDeque<MessageFate> unpublished = new ArrayDeque<>();
        order.releaseSettled(unpublished);
        assertThat(unpublished).as("released to be held, not to wait forever").containsExactly(a2);
        assertThat(order.verdict(a2)).isEqualTo(AggregateOrder.Verdict.HOLD);
        a2.hold(order.holdReason(a2));
        assertThat(a2.reason()).isEqualTo("held behind parked event a1 of aggregate A (relay.dead-letter.order=keep-aggregate)");
        assertThat(order.verdict(a3)).isEqualTo(AggregateOrder.Verdict.HOLD);
        a3.hold(order.holdReason(a3));
        assertThat(a3.reason()).as("behind the event in the way, not the held one before it").contains("behind parked event a1 ");
    }

    @Test
    void intoAStreamNothingWaitsButAParkedEventStillHoldsItsAggregate() throws Exception {
        AggregateOrder order = AggregateOrder.keep(new Table(), false);
        MessageFate a1 = event("A", "a1");
        MessageFate a2 = event("A", "a2");
        MessageFate a3 = event("A", "a3");
        order.appended(List.of(a1, a2));
        order.verdict(a1);
        a1.published(1);
        assertThat(order.verdict(a2)).as("a1 awaits its confirm, and a2 goes behind it").isEqualTo(AggregateOrder.Verdict.PUBLISH);
        a1.acked();
        a2.refuse("too large: more than the frame size");
        a2.parked();
        order.parked(a2);
        a2.done();
        order.appended(List.of(a3));
        assertThat(order.verdict(a3)).as("a parked predecessor, even once marked").isEqualTo(AggregateOrder.Verdict.HOLD);
    }

    @Test
    void theTableHoldsAnAggregateAcrossRestartsAndAnEventAlreadyParkedIsNotParkedAgain() throws Exception {
        Table table = new Table();
        table.any = true;
        table.first = Map.of("A", "a0");
        table.parkedEvents = Set.of("a0");
        AggregateOrder order = AggregateOrder.keep(table, true);
        MessageFate a0 = event("A", "a0");
        MessageFate a1 = event("A", "a1");
        MessageFate b1 = event("B", "b1");
        order.appended(List.of(a0, a1, b1));
        assertThat(order.verdict(a0)).isEqualTo(AggregateOrder.Verdict.HOLD);
        assertThat(a0.alreadyParked).isTrue();
        assertThat(order.verdict(a1)).isEqualTo(AggregateOrder.Verdict.HOLD);
        assertThat(a1.alreadyParked).isFalse();
        assertThat(order.holdReason(a1)).contains("behind parked event a0 ");
        assertThat(order.verdict(b1)).isEqualTo(AggregateOrder.Verdict.PUBLISH);
    }

    @Test
    void theTableIsNotAskedWhileNothingIsParked() throws Exception {
        Table table = new Table();
        AggregateOrder order = AggregateOrder.keep(table, true);
        order.appended(List.of(event("A", "a1")));
        order.appended(List.of(event("A", "a2")));
        assertThat(table.lookups).as("nothing parked: one look whether anything is, none per batch").hasValue(0);

        MessageFate parked = event("C", "c1");
        order.appended(List.of(parked));
        parked.refuse("too large");
        parked.parked();
        order.parked(parked);
        order.appended(List.of(event("A", "a3")));
        assertThat(table.lookups).as("once this relay parked something, each batch asks").hasValue(1);
    }

    @Test
    void eventsWithoutAnAggregateAndNoOrderKeptAreAlwaysPublished() throws Exception {
        AggregateOrder keep = AggregateOrder.keep(new Table(), true);
        MessageFate n1 = event(null, "n1");
        MessageFate n2 = event(null, "n2");
        keep.appended(List.of(n1, n2));
        n1.published(1);
        assertThat(keep.verdict(n2)).isEqualTo(AggregateOrder.Verdict.PUBLISH);

        AggregateOrder none = AggregateOrder.none();
        MessageFate a1 = event("A", "a1");
        MessageFate a2 = event("A", "a2");
        none.appended(List.of(a1, a2));
        a1.published(1);
        a1.returned("unroutable");
        assertThat(none.verdict(a2)).isEqualTo(AggregateOrder.Verdict.PUBLISH);
    }

    @Test
    void afterAFailureNothingWaitsAndTheRewoundRecordsAreJudgedAgainInOrder() throws Exception {
        AggregateOrder order = AggregateOrder.keep(new Table(), true);
        MessageFate a1 = event("A", "a1");
        MessageFate a2 = event("A", "a2");
        order.appended(List.of(a1, a2));
        order.verdict(a1);
        a1.published(1);
        order.await(a2);
        a1.rewound();
        order.rewound();
        assertThat(order.waitingCount()).isZero();
        assertThat(order.verdict(a1)).isEqualTo(AggregateOrder.Verdict.PUBLISH);
        a1.published(2);
        assertThat(order.verdict(a2)).as("still behind a1, which is in flight again").isEqualTo(AggregateOrder.Verdict.WAIT);
    }
}
