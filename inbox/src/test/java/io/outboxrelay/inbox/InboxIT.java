package io.outboxrelay.inbox;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Channel;
import com.rabbitmq.client.ConnectionFactory;

import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.Progress;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/**
 * The inbox against real servers: behind a relay killed under load (duplicates arrive; the effect
 * happens once per event), a consumer that dies between its commit and its ack, two consumer names
 * on one database, and each failure outcome.
 */
class InboxIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    /** How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. */
    private static final Duration STALL = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    @BeforeAll
    static void tables() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL, Effects.DDL);
    }

    private static Inbox inbox(String consumer) throws SQLException {
        Inbox inbox = Inbox.forConsumer(consumer, db::connect).backoff(Duration.ofMillis(50), Duration.ofMillis(200)).maxAttempts(3).build();
        inbox.createTableIfMissing();
        return inbox;
    }

    /** Consumes {@code queue} with manual acks through {@code inbox}; counts each outcome. */
    private static Map<Outcome, AtomicInteger> consume(com.rabbitmq.client.Connection amqp, String queue, Inbox inbox, InboxHandler handler)
            throws Exception {
        Map<Outcome, AtomicInteger> outcomes = new ConcurrentHashMap<>();
        for (Outcome o : Outcome.values()) {
            outcomes.put(o, new AtomicInteger());
        }
        Channel ch = amqp.createChannel();
        ch.basicQos(50);
        ch.basicConsume(queue, false, (tag, delivery) -> {
            try {
                outcomes.get(inbox.process(ch, delivery, handler)).incrementAndGet();
            }
            catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, tag -> { });
        return outcomes;
    }

    private static int effects(String consumer, String whereIdLike) throws SQLException {
        return Effects.count(db, consumer, whereIdLike);
    }

    @Test
    void behindAKilledRelayTheEffectHappensOncePerEvent() throws Exception {
        String exchange = broker.declareExchange("inbox-relay", "topic");
        String queue = broker.declareQueue("inbox-relay", exchange, "#");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "inbox-relay");
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        // Offsets stored every 5 s: the kill then leaves seconds of confirmed events to be published again, so duplicates surely arrive.
        config.put("debezium.source.offset.flush.interval.ms", "5000");
        Inbox inbox = inbox("billing");
        RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
        try (com.rabbitmq.client.Connection amqp = broker.newConnection();
                OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", "inbox-relay", 20, 2_000, 500)) {
            Map<Outcome, AtomicInteger> outcomes = consume(amqp, queue, inbox, Effects.of("billing"));
            // Mid-stream, a few seconds after the last stored offset at most: what was confirmed since is published again.
            Progress.atLeast("events written before the kill", 1_000, STALL, writer::written);
            relay.kill();
            relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
            writer.awaitDone(STALL);
            Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", "inbox-relay");
            Progress.exactly("events processed behind the killed relay", committed.size(), STALL, () -> outcomes.get(Outcome.PROCESSED).get());
            Thread.sleep(2_000);
            try (Connection c = db.connect(); Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SELECT count(*), count(DISTINCT event_id) FROM effects WHERE consumer = 'billing'")) {
                rs.next();
                assertThat(rs.getInt(1)).as("one effect per event, duplicates (" + outcomes.get(Outcome.DUPLICATE) + ") skipped").isEqualTo(2_000);
                assertThat(rs.getInt(2)).isEqualTo(2_000);
            }
            assertThat(outcomes.get(Outcome.REJECTED).get()).isZero();
            assertThat(outcomes.get(Outcome.DUPLICATE).get()).as("the kill republished what was confirmed since the last stored offset").isPositive();
            System.out.printf("inbox behind a killed relay: 2000 events, %d duplicate deliveries skipped, 2000 effects%n",
                    outcomes.get(Outcome.DUPLICATE).get());
        }
        finally {
            relay.close();
        }
    }

    /** The consumer dies after its commit and before its ack: the broker redelivers, and the redelivery is recognised. */
    @Test
    void aConsumerThatDiedBetweenCommitAndAckSkipsTheRedelivery() throws Exception {
        String exchange = broker.declareExchange("inbox-crash", "fanout");
        String queue = broker.declareQueue("inbox-crash", exchange, "");
        AtomicBoolean crash = new AtomicBoolean(true);
        ConnectionFactory factory = broker.connectionFactory();
        com.rabbitmq.client.Connection dying = factory.newConnection();
        Inbox crashing = Inbox.forConsumer("crashy", db::connect).afterCommit(m -> {
            if (crash.getAndSet(false)) {
                // As if the process died here: the connection goes, the ack is never sent.
                dying.abort();
                throw new IllegalStateException("simulated crash after the commit");
            }
        }).build();
        crashing.createTableIfMissing();
        Channel first = dying.createChannel();
        first.basicConsume(queue, false, (tag, d) -> {
            try {
                crashing.process(first, d, Effects.of("crashy"));
            }
            catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }, tag -> { });
        try (com.rabbitmq.client.Connection publisher = broker.newConnection(); Channel p = publisher.createChannel()) {
            p.basicPublish(exchange, "", new AMQP.BasicProperties.Builder().messageId("crash-1").build(), "x".getBytes(StandardCharsets.UTF_8));
        }
        await().atMost(Duration.ofSeconds(60)).until(() -> !dying.isOpen());
        assertThat(effects("crashy", "crash-1")).as("the effect committed before the crash").isEqualTo(1);

        try (com.rabbitmq.client.Connection second = broker.newConnection()) {
            Map<Outcome, AtomicInteger> outcomes = consume(second, queue, inbox("crashy"), Effects.of("crashy"));
            Progress.exactly("the redelivery recognised as a duplicate", 1, STALL, () -> outcomes.get(Outcome.DUPLICATE).get());
            assertThat(effects("crashy", "crash-1")).as("the redelivery had no second effect").isEqualTo(1);
        }
    }

    @Test
    void twoConsumerNamesOnOneDatabaseEachProcessEveryMessage() throws Exception {
        String exchange = broker.declareExchange("inbox-fanout", "fanout");
        String queueA = broker.declareQueue("inbox-a", exchange, "");
        String queueB = broker.declareQueue("inbox-b", exchange, "");
        try (com.rabbitmq.client.Connection amqp = broker.newConnection()) {
            Map<Outcome, AtomicInteger> a = consume(amqp, queueA, inbox("shipping"), Effects.of("shipping"));
            Map<Outcome, AtomicInteger> b = consume(amqp, queueB, inbox("mailing"), Effects.of("mailing"));
            try (Channel p = amqp.createChannel()) {
                for (int i = 0; i < 20; i++) {
                    p.basicPublish(exchange, "", new AMQP.BasicProperties.Builder().messageId("fan-" + i).build(), new byte[0]);
                }
            }
            Progress.exactly("messages processed under both consumer names", 40, STALL,
                    () -> a.get(Outcome.PROCESSED).get() + b.get(Outcome.PROCESSED).get());
            assertThat(effects("shipping", "fan-%")).isEqualTo(20);
            assertThat(effects("mailing", "fan-%")).isEqualTo(20);
        }
    }

    /** Each failure has its outcome: a missing id and a handler that keeps failing go to the dead-letter queue; a flaky one is retried; a database that is down requeues. */
    @Test
    void failuresAreRequeuedOrDeadLetteredNeverAcknowledgedSilently() throws Exception {
        String dlx = broker.declareExchange("inbox-dlx", "fanout");
        String dlq = broker.declareQueue("inbox-dlq", dlx, "");
        String queue = broker.uniqueName("inbox-failing");
        AtomicInteger flaky = new AtomicInteger();
        AtomicBoolean databaseUp = new AtomicBoolean(false);
        // A real refusal: nothing listens on port 1.
        ConnectionSource sometimesDown = () -> databaseUp.get() ? db.connect() : DriverManager.getConnection("jdbc:postgresql://127.0.0.1:1/none", "x", "");
        inbox("failing");
        Inbox inbox = Inbox.forConsumer("failing", sometimesDown).backoff(Duration.ofMillis(50), Duration.ofMillis(200)).maxAttempts(3).build();
        InboxHandler handler = (tx, m) -> {
            if (m.messageId().equals("always-fails")) {
                throw new IllegalStateException("cannot handle this one");
            }
            if (m.messageId().equals("fails-twice") && flaky.incrementAndGet() <= 2) {
                throw new IllegalStateException("not yet");
            }
            Effects.of("failing").handle(tx, m);
        };
        try (com.rabbitmq.client.Connection amqp = broker.newConnection(); Channel setup = amqp.createChannel()) {
            setup.queueDeclare(queue, true, false, false, Map.of("x-dead-letter-exchange", dlx));
            for (String id : List.of("always-fails", "fails-twice", "fine")) {
                setup.basicPublish("", queue, new AMQP.BasicProperties.Builder().messageId(id).build(), new byte[0]);
            }
            setup.basicPublish("", queue, new AMQP.BasicProperties.Builder().build(), "no id".getBytes(StandardCharsets.UTF_8));
            Map<Outcome, AtomicInteger> outcomes = consume(amqp, queue, inbox, handler);
            Progress.atLeast("requeues while the database is down", 6, STALL, () -> outcomes.get(Outcome.REQUEUED).get());
            assertThat(outcomes.get(Outcome.PROCESSED).get()).as("nothing processed while the database is down").isZero();
            assertThat(effects("failing", "%")).isZero();
            databaseUp.set(true);
            try (QueueRecorder deadLetters = broker.record(dlq)) {
                List<com.rabbitmq.client.Delivery> dead = deadLetters.awaitAtLeast(2, STALL);
                assertThat(dead).extracting(d -> d.getProperties().getMessageId()).containsExactlyInAnyOrder("always-fails", null);
            }
            Progress.exactly("messages processed once the database is back", 2, STALL, () -> outcomes.get(Outcome.PROCESSED).get());
            assertThat(effects("failing", "fails-twice")).as("retried until it worked, once").isEqualTo(1);
            assertThat(effects("failing", "fine")).isEqualTo(1);
            assertThat(effects("failing", "always-fails")).isZero();
            assertThat(outcomes.get(Outcome.REJECTED).get()).isEqualTo(2);
        }
        finally {
            try (com.rabbitmq.client.Connection amqp = broker.newConnection(); Channel ch = amqp.createChannel()) {
                ch.queueDelete(queue);
            }
        }
    }

    @Test
    void processedIdsAreKeptForTheirAgeAndThenPurged() throws Exception {
        Inbox inbox = inbox("purged");
        db.execute("INSERT INTO inbox_processed (consumer, message_id, processed_at) VALUES ('purged', 'old-1', now() - interval '8 days'), "
                + "('purged', 'old-2', now() - interval '8 days'), ('purged', 'new-1', now()), ('other', 'old-3', now() - interval '8 days')");
        assertThat(inbox.purgeOlderThan(Duration.ofDays(7), 1)).isEqualTo(2);
        try (Connection c = db.connect(); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT string_agg(consumer || ':' || message_id, ',' ORDER BY message_id) FROM inbox_processed "
                        + "WHERE consumer IN ('purged', 'other')")) {
            rs.next();
            assertThat(rs.getString(1)).as("another consumer's ids are its own business").isEqualTo("purged:new-1,other:old-3");
        }
    }
}
