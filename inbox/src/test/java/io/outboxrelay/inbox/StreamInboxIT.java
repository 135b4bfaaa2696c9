package io.outboxrelay.inbox;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.stream.Consumer;
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;
import com.rabbitmq.stream.Environment;
import com.rabbitmq.stream.Message;
import com.rabbitmq.stream.OffsetSpecification;
import com.rabbitmq.stream.Producer;

import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.Progress;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;
import io.outboxrelay.testing.TestStreams;

/**
 * The stream inbox against real servers: behind the relay's stream sink with the consumer stopped
 * and started again midway, re-reading a stream from its start, duplicates inside a stream and two
 * consumer names, each failure outcome, and (RabbitMQ 3.11+) a super stream's partitions.
 */
class StreamInboxIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();
    @RegisterExtension
    static final TestStreams streams = new TestStreams();

    /** How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. */
    private static final Duration STALL = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    @BeforeAll
    static void tables() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL, Effects.DDL);
    }

    /** A consumer's connections, from a pool as a service would have them: the inbox asks for one per message. */
    private static HikariDataSource pool() {
        HikariConfig config = new HikariConfig();
        config.setJdbcUrl(db.jdbcUrl());
        config.setUsername(db.server().user());
        config.setPassword(db.server().password());
        config.setMaximumPoolSize(4);
        return new HikariDataSource(config);
    }

    private static StreamInbox inbox(String consumer, ConnectionSource connections) throws SQLException {
        StreamInbox inbox = StreamInbox.forConsumer(consumer, connections).backoff(Duration.ofMillis(50), Duration.ofMillis(200)).maxAttempts(3).build();
        inbox.createTablesIfMissing();
        return inbox;
    }

    private record Consuming(Consumer consumer, Map<Outcome, AtomicInteger> outcomes) implements AutoCloseable {
        int count(Outcome o) {
            return outcomes.get(o).get();
        }

        @Override
        public void close() {
            consumer.close();
        }
    }

    /** Consumes {@code stream} through {@code inbox}, from the stored position (or the first message) unless {@code from} says otherwise. */
    private static Consuming consume(String stream, boolean superStream, StreamInbox inbox, InboxHandler handler, OffsetSpecification from) {
        Map<Outcome, AtomicInteger> outcomes = new ConcurrentHashMap<>();
        for (Outcome o : Outcome.values()) {
            outcomes.put(o, new AtomicInteger());
        }
        var builder = streams.environment().consumerBuilder();
        builder = superStream ? builder.superStream(stream) : builder.stream(stream);
        builder = from == null ? builder.subscriptionListener(inbox.subscriptionListener(OffsetSpecification.first())) : builder.offset(from);
        Consumer consumer = builder.messageHandler((context, message) -> {
            try {
                outcomes.get(inbox.process(context, message, handler)).incrementAndGet();
            }
            catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }).build();
        return new Consuming(consumer, outcomes);
    }

    private static int effects(String consumer, String whereIdLike) throws SQLException {
        return Effects.count(db, consumer, whereIdLike);
    }

    private static void publish(Environment env, String stream, List<String> ids) throws InterruptedException {
        Producer producer = env.producerBuilder().stream(stream).build();
        CountDownLatch confirmed = new CountDownLatch(ids.size());
        for (String id : ids) {
            var b = producer.messageBuilder();
            if (id != null) {
                b = b.properties().messageId(id).messageBuilder();
            }
            Message m = b.addData(("body of " + id).getBytes(StandardCharsets.UTF_8)).build();
            producer.send(m, status -> confirmed.countDown());
        }
        assertThat(confirmed.await(30, TimeUnit.SECONDS)).as("the broker confirmed every message").isTrue();
        producer.close();
    }

    @Test
    void behindTheRelaysStreamSinkAConsumerStoppedAndStartedMidwayHasOneEffectPerEvent() throws Exception {
        String stream = streams.uniqueName("inbox-relay", 0);
        Map<String, String> config = RelayFiles.intoStream(RelayFiles.minimalConfig(db, broker, "inbox-stream"), streams.server().host(),
                streams.server().port(), broker.server().user(), broker.server().password(), stream);
        try (HikariDataSource pool = pool();
                RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
                OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", "inbox-stream", 20, 2_000, 500)) {
            StreamInbox inbox = inbox("billing", pool::getConnection);
            long started = System.nanoTime();
            Consuming first = consume(stream, false, inbox, Effects.of("billing"), null);
            Progress.atLeast("events processed by the first consumer", 600, STALL, () -> first.count(Outcome.PROCESSED));
            first.close();
            long firstStopped = System.nanoTime();
            long stoppedAt = inbox.nextOffset(stream).orElseThrow();
            writer.awaitDone(STALL);
            Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", "inbox-stream");
            long secondStarted = System.nanoTime();
            try (Consuming second = consume(stream, false, inbox, Effects.of("billing"), null)) {
                Progress.exactly("events processed by both consumers", committed.size(), STALL,
                        () -> first.count(Outcome.PROCESSED) + second.count(Outcome.PROCESSED));
                assertThat(second.count(Outcome.DUPLICATE)).as("the second consumer started at the stored position " + stoppedAt).isZero();
            }
            long secondDone = System.nanoTime();
            // Re-reading the whole stream, as a restarted consumer that lost its broker-side offset would (an inbox of its own, nothing
            // known yet): every message skipped by its stored position.
            try (Consuming again = consume(stream, false, inbox("billing", pool::getConnection), Effects.of("billing"), OffsetSpecification.first())) {
                Progress.exactly("duplicates skipped re-reading the stream", committed.size(), STALL, () -> again.count(Outcome.DUPLICATE));
                assertThat(again.count(Outcome.PROCESSED)).isZero();
            }
            long againDone = System.nanoTime();
            try (Connection c = db.connect(); Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SELECT count(*), count(DISTINCT event_id) FROM effects WHERE consumer = 'billing'")) {
                rs.next();
                assertThat(rs.getInt(1)).as("one effect per event").isEqualTo(2_000);
                assertThat(rs.getInt(2)).isEqualTo(2_000);
            }
            assertThat(inbox.nextOffset(stream)).as("the position is past the last message").isEqualTo(OptionalLong.of(2_000));
            System.out.printf("stream inbox behind the relay: 2000 events, consumer stopped at offset %d after %d ms and started again, the rest "
                    + "%d ms, then the whole stream re-read in %d ms: 2000 effects%n", stoppedAt, (firstStopped - started) / 1_000_000,
                    (secondDone - secondStarted) / 1_000_000, (againDone - secondDone) / 1_000_000);
        }
    }

    @Test
    void duplicatesInsideAStreamAreSkippedAndTwoConsumerNamesEachProcessEveryMessage() throws Exception {
        String stream = streams.uniqueName("inbox-dups", 0);
        streams.environment().streamCreator().stream(stream).create();
        List<String> ids = new ArrayList<>();
        for (int i = 0; i < 20; i++) {
            ids.add("dup-" + i);
        }
        for (int i = 0; i < 10; i++) {
            ids.add("dup-" + i);   // a producer without de-duplication published these again
        }
        publish(streams.environment(), stream, ids);
        try (Consuming a = consume(stream, false, inbox("shipping", db::connect), Effects.of("shipping"), null);
                Consuming b = consume(stream, false, inbox("mailing", db::connect), Effects.of("mailing"), null)) {
            Progress.until("both consumer names to settle all 30 messages, 10 of them duplicates", STALL,
                    () -> a.count(Outcome.PROCESSED) + a.count(Outcome.DUPLICATE) + b.count(Outcome.PROCESSED) + b.count(Outcome.DUPLICATE),
                    settled -> a.count(Outcome.DUPLICATE) == 10 && b.count(Outcome.DUPLICATE) == 10);
            assertThat(a.count(Outcome.PROCESSED)).isEqualTo(20);
            assertThat(b.count(Outcome.PROCESSED)).isEqualTo(20);
        }
        assertThat(effects("shipping", "dup-%")).isEqualTo(20);
        assertThat(effects("mailing", "dup-%")).isEqualTo(20);
    }

    /** A stream cannot requeue: a flaky handler is retried in place, a hopeless one and a message without an id are recorded as rejected, a database that is down is waited for. */
    @Test
    void failuresAreRetriedInPlaceOrRecordedAsRejectedNeverSkippedSilently() throws Exception {
        String stream = streams.uniqueName("inbox-failing", 0);
        streams.environment().streamCreator().stream(stream).create();
        AtomicInteger flaky = new AtomicInteger();
        AtomicBoolean databaseUp = new AtomicBoolean(false);
        // A real refusal: nothing listens on port 1.
        ConnectionSource sometimesDown = () -> databaseUp.get() ? db.connect() : DriverManager.getConnection("jdbc:postgresql://127.0.0.1:1/none", "x", "");
        inbox("failing", db::connect);
        StreamInbox inbox = StreamInbox.forConsumer("failing", sometimesDown).backoff(Duration.ofMillis(50), Duration.ofMillis(200)).maxAttempts(3).build();
        List<String> order = Collections.synchronizedList(new ArrayList<>());
        InboxHandler handler = (tx, m) -> {
            if (m.messageId().equals("always-fails")) {
                throw new IllegalStateException("cannot handle this one");
            }
            if (m.messageId().equals("fails-twice") && flaky.incrementAndGet() <= 2) {
                throw new IllegalStateException("not yet");
            }
            Effects.of("failing").handle(tx, m);
            order.add(m.messageId());
        };
        publish(streams.environment(), stream, java.util.Arrays.asList("fails-twice", "always-fails", null, "fine"));
        try (Consuming c = consume(stream, false, inbox, handler, OffsetSpecification.first())) {
            Thread.sleep(1_500);
            assertThat(c.count(Outcome.PROCESSED) + c.count(Outcome.REJECTED) + c.count(Outcome.DUPLICATE)).as("nothing settled while the database is down")
                    .isZero();
            assertThat(effects("failing", "%")).isZero();
            databaseUp.set(true);
            Progress.until("2 processed and 2 rejected once the database is back", STALL, () -> c.count(Outcome.PROCESSED) + c.count(Outcome.REJECTED),
                    settled -> c.count(Outcome.PROCESSED) == 2 && c.count(Outcome.REJECTED) == 2);
        }
        assertThat(order).as("in stream order, the failing ones settled in place").containsExactly("fails-twice", "fine");
        assertThat(effects("failing", "always-fails")).isZero();
        try (Connection c = db.connect(); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT stream_offset, coalesce(message_id, '-'), reason, convert_from(body, 'UTF8') FROM inbox_processed_rejected "
                        + "WHERE consumer = 'failing' ORDER BY stream_offset")) {
            assertThat(rs.next()).isTrue();
            assertThat(rs.getLong(1)).isEqualTo(1);
            assertThat(rs.getString(2)).isEqualTo("always-fails");
            assertThat(rs.getString(3)).contains("the handler failed 3 times").contains("cannot handle this one");
            assertThat(rs.getString(4)).isEqualTo("body of always-fails");
            assertThat(rs.next()).isTrue();
            assertThat(rs.getLong(1)).isEqualTo(2);
            assertThat(rs.getString(2)).isEqualTo("-");
            assertThat(rs.getString(3)).contains("no message id");
            assertThat(rs.next()).isFalse();
        }
        assertThat(inbox.nextOffset(stream)).isEqualTo(OptionalLong.of(4));
        // Read again from the start: the rejected ones and the one without an id are behind the stored position, so not tried again.
        int triesBefore = flaky.get();
        try (Consuming again = consume(stream, false, inbox, handler, OffsetSpecification.first())) {
            Progress.exactly("settled messages skipped on a re-read", 4, STALL, () -> again.count(Outcome.DUPLICATE));
            assertThat(again.count(Outcome.REJECTED) + again.count(Outcome.PROCESSED)).isZero();
        }
        assertThat(flaky.get()).as("the handler was not called again").isEqualTo(triesBefore);
    }

    /** Each partition of a super stream has its own stored position; stopped and started again, the consumer resumes each one. */
    @Test
    @Tag("rabbitmq4")
    void aSuperStreamsPartitionsEachResumeFromTheirOwnPosition() throws Exception {
        String superStream = streams.uniqueName("inbox-super", 3);
        streams.environment().streamCreator().name(superStream).superStream().partitions(3).creator().create();
        StreamInbox inbox = inbox("partitioned", db::connect);
        publishRoutedById(superStream, 0, 300);
        try (Consuming first = consume(superStream, true, inbox, Effects.of("partitioned"), null)) {
            Progress.exactly("messages processed from the super stream", 300, STALL, () -> first.count(Outcome.PROCESSED));
        }
        long sum = 0;
        List<Long> positions = new ArrayList<>();
        for (int p = 0; p < 3; p++) {
            long position = inbox.nextOffset(superStream + "-" + p).orElseThrow();
            positions.add(position);
            sum += position;
        }
        assertThat(sum).as("each partition's position " + positions + ", together every message").isEqualTo(300);
        publishRoutedById(superStream, 300, 150);
        try (Consuming again = consume(superStream, true, inbox, Effects.of("partitioned"), null)) {
            Progress.exactly("new messages processed after the restart", 150, STALL, () -> again.count(Outcome.PROCESSED));
            Thread.sleep(1_000);
            assertThat(again.count(Outcome.DUPLICATE)).as("each partition resumed at its own position: nothing read again").isZero();
        }
        assertThat(effects("partitioned", "part-%")).isEqualTo(450);
        System.out.printf("stream inbox on a super stream: positions %s after 300, then 150 more, 450 effects, nothing read twice%n", positions);
    }

    private static void publishRoutedById(String superStream, int from, int count) throws InterruptedException {
        Producer producer = streams.environment().producerBuilder().superStream(superStream).routing(m -> m.getProperties().getMessageIdAsString())
                .producerBuilder().build();
        CountDownLatch confirmed = new CountDownLatch(count);
        for (int i = from; i < from + count; i++) {
            producer.send(producer.messageBuilder().properties().messageId("part-" + i).messageBuilder().addData(new byte[0]).build(),
                    status -> confirmed.countDown());
        }
        assertThat(confirmed.await(30, TimeUnit.SECONDS)).isTrue();
        producer.close();
    }
}
