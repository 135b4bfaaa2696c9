package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.client.Delivery;

import io.outboxrelay.cli.CliRun;
import io.outboxrelay.testing.DeliveryCheck;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/**
 * Shards as processes of their own, each on its own slot and row-filtered publication, under load:
 * every event is delivered by exactly one shard (the AMQP app-id names it), each aggregate by one
 * shard only and in order; a shard killed and started again leaves the others going; a relay
 * started with another count is refused; and {@code reshard} changes the count under load without
 * losing or reordering an event.
 */
class ShardsIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    private static final Pattern AGG = Pattern.compile("\"agg\":\\s*\"([^\"]+)\"");
    /** How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. */
    private static final Duration STALL = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    @BeforeAll
    static void outbox() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
    }

    private Map<String, String> shard(String name, String exchange, int index, int count) {
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, name);
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("relay.shard.count", Integer.toString(count));
        config.put("relay.shard.index", Integer.toString(index));
        config.put("relay.restart.backoff.initial.ms", "200");
        return config;
    }

    @Test
    void threeShardsDeliverEveryEventThroughExactlyOneAndSurviveAKill() throws Exception {
        String exchange = broker.declareExchange("shards", "topic");
        String queue = broker.declareQueue("shards", exchange, "#");
        List<RelayProcess> relays = new ArrayList<>();
        try (QueueRecorder recorder = broker.record(queue)) {
            startShards(relays, "sharded", exchange, 3);
            assertThat(slots("sharded_%of3")).containsExactlyInAnyOrder("sharded_0of3", "sharded_1of3", "sharded_2of3");
            try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", "sharded", 30, 3_000, 500)) {
                recorder.awaitAtLeast(750, Duration.ofSeconds(60));
                relays.get(1).kill();
                relays.set(1, RelayProcess.start(dir, shard("sharded", exchange, 1, 3)).awaitReady(Duration.ofSeconds(60)));
                writer.awaitDone(STALL);
            }
            Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", "sharded-");
            List<Delivery> deliveries = recorder.awaitIds(committed, Duration.ofSeconds(120));
            deliveries = recorder.awaitQuiet(Duration.ofSeconds(2));
            DeliveryCheck check = DeliveryCheck.of(deliveries, committed);

            Map<String, Set<String>> shardsOfEvent = new HashMap<>();
            Map<String, Set<String>> shardsOfAggregate = new HashMap<>();
            Map<String, Integer> perShard = new HashMap<>();
            for (Delivery d : deliveries) {
                String shard = d.getProperties().getAppId();
                shardsOfEvent.computeIfAbsent(d.getProperties().getMessageId(), id -> new HashSet<>()).add(shard);
                Matcher agg = AGG.matcher(new String(d.getBody(), StandardCharsets.UTF_8));
                assertThat(agg.find()).isTrue();
                shardsOfAggregate.computeIfAbsent(agg.group(1), a -> new HashSet<>()).add(shard);
                perShard.merge(shard, 1, Integer::sum);
            }
            FaultIT.report("3 shards under 500/s, shard 1 killed (SIGKILL) and started again: " + check + ", deliveries per shard " + perShard);
            assertThat(check.lost()).isZero();
            assertThat(check.orderViolations()).isEmpty();
            assertThat(shardsOfEvent.values()).as("every event through exactly one shard").allSatisfy(s -> assertThat(s).hasSize(1));
            assertThat(shardsOfAggregate.values()).as("every aggregate through one shard").allSatisfy(s -> assertThat(s).hasSize(1));
            assertThat(perShard.keySet()).containsExactlyInAnyOrder("sharded-0of3", "sharded-1of3", "sharded-2of3");
            for (RelayProcess relay : relays) {
                assertThat(relay.isAlive()).isTrue();
            }
            assertThat(relays.get(0).get("/q/metrics").body()).contains("relay=\"sharded-0of3\"");

            // The same relay name with another count: refused before anything starts.
            try (RelayProcess wrong = RelayProcess.start(dir, shard("sharded", exchange, 0, 2))) {
                await().atMost(Duration.ofSeconds(60)).until(() -> !wrong.isAlive());
                assertThat(wrong.stop()).isEqualTo(2);
                assertThat(wrong.log()).contains("relay 'sharded' has stored offsets of 3 shards (sharded-0of3, sharded-1of3, sharded-2of3)",
                        "relay.shard.count=2", "outbox-relay reshard --to 2");
            }
            CliRun status = CliRun.of("status", "--config", RelayFiles.write(dir, shard("sharded", exchange, 2, 3)).toString());
            assertThat(status.out()).contains("shard          2 of 3: the aggregates where (hashtext(coalesce(\"aggregateid\"::text, '')) & 2147483647) % 3 = 2");
        }
        finally {
            for (RelayProcess relay : relays) {
                relay.close();
            }
        }
    }

    @Test
    void reshardingFromThreeToTwoUnderLoadLosesAndReordersNothing() throws Exception {
        String exchange = broker.declareExchange("reshard", "topic");
        String queue = broker.declareQueue("reshard", exchange, "#");
        List<RelayProcess> relays = new ArrayList<>();
        try (QueueRecorder recorder = broker.record(queue)) {
            startShards(relays, "resharded", exchange, 3);
            Path newConfig = RelayFiles.write(dir, shard("resharded", exchange, 0, 2));
            try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", "resharded", 30, 6_000, 300)) {
                recorder.awaitAtLeast(1_000, Duration.ofSeconds(60));
                CliRun prepare = CliRun.of("reshard", "--config", newConfig.toString(), "--to", "2");
                assertThat(prepare.exit()).as(prepare.out() + prepare.err()).isZero();
                assertThat(prepare.out()).contains("made slot resharded_0of2", "made slot resharded_1of2", "the old relays have delivered everything");

                CliRun early = CliRun.of("reshard", "--config", newConfig.toString(), "--to", "2", "--finish");
                assertThat(early.exit()).isEqualTo(3);
                assertThat(early.err()).contains("is still read by a running relay");

                for (RelayProcess relay : relays) {
                    relay.stop();
                }
                relays.clear();
                Thread.sleep(1_000);
                CliRun finish = CliRun.of("reshard", "--config", newConfig.toString(), "--to", "2", "--finish");
                assertThat(finish.exit()).as(finish.out() + finish.err()).isZero();
                assertThat(slots("resharded_%")).containsExactlyInAnyOrder("resharded_0of2", "resharded_1of2");
                startShards(relays, "resharded", exchange, 2);
                writer.awaitDone(STALL);
            }
            Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", "resharded-");
            recorder.awaitIds(committed, Duration.ofSeconds(120));
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitQuiet(Duration.ofSeconds(2)), committed);
            FaultIT.report("reshard 3 -> 2 shards under 300/s (reshard --to 2, stop, --finish, start): " + check);
            assertThat(check.lost()).isZero();
            assertThat(check.orderViolations()).as("first deliveries keep per-aggregate order across the hand-over").isEmpty();
        }
        finally {
            for (RelayProcess relay : relays) {
                relay.close();
            }
        }
    }

    /**
     * {@code reshard --finish} stopped between two slot drops, then run again. The first run had
     * advanced the new slots to the slowest old shard's position and dropped that shard's slot (as a
     * run that drops in list order and fails on the next drop leaves it); the old shards stopped at
     * different positions. Run again, it must not advance the new slots to the oldest of the slots
     * left, past what the dropped shard had not delivered.
     */
    @Test
    void aFinishInterruptedBetweenTwoSlotDropsAndRunAgainLosesNothing() throws Exception {
        String exchange = broker.declareExchange("refinish", "topic");
        String queue = broker.declareQueue("refinish", exchange, "#");
        List<RelayProcess> relays = new ArrayList<>();
        try (QueueRecorder recorder = broker.record(queue)) {
            startShards(relays, "refinished", exchange, 3);
            Path newConfig = RelayFiles.write(dir, shard("refinished", exchange, 0, 2));
            try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", "refinished", 30, 6_000, 300)) {
                recorder.awaitAtLeast(1_000, Duration.ofSeconds(60));
                CliRun prepare = CliRun.of("reshard", "--config", newConfig.toString(), "--to", "2");
                assertThat(prepare.exit()).as(prepare.out() + prepare.err()).isZero();
                // Shard 1 stops first, the others 3 s of events later: its slot is the slowest.
                relays.get(1).stop();
                Thread.sleep(3_000);
                relays.get(0).stop();
                relays.get(2).stop();
                relays.clear();
                Thread.sleep(1_000);
                String slowest = null;
                String slowestAt = null;
                try (Connection c = db.connect(); Statement st = c.createStatement(); ResultSet rs = st.executeQuery(
                        "SELECT slot_name, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name LIKE 'refinished_%of3' "
                                + "ORDER BY confirmed_flush_lsn LIMIT 1")) {
                    assertThat(rs.next()).isTrue();
                    slowest = rs.getString(1);
                    slowestAt = rs.getString(2);
                }
                // What the interrupted run did: the new slots advanced to the slowest position, that slot dropped, then it stopped.
                db.execute("SELECT pg_replication_slot_advance('refinished_0of2', '" + slowestAt + "')",
                        "SELECT pg_replication_slot_advance('refinished_1of2', '" + slowestAt + "')",
                        "SELECT pg_drop_replication_slot('" + slowest + "')");
                CliRun finish = CliRun.of("reshard", "--config", newConfig.toString(), "--to", "2", "--finish");
                assertThat(finish.exit()).as(finish.out() + finish.err()).isZero();
                assertThat(finish.out()).contains("an earlier reshard --finish stopped part-way; the new slots already begin at " + slowestAt);
                assertThat(slots("refinished_%")).containsExactlyInAnyOrder("refinished_0of2", "refinished_1of2");
                startShards(relays, "refinished", exchange, 2);
                writer.awaitDone(STALL);
            }
            Set<String> committed = OutboxWriter.committedIds(db::connect, "outbox_event", "refinished-");
            recorder.awaitIds(committed, Duration.ofSeconds(120));
            DeliveryCheck check = DeliveryCheck.of(recorder.awaitQuiet(Duration.ofSeconds(2)), committed);
            FaultIT.report("reshard 3 -> 2 with --finish interrupted after the slowest old slot's drop, then run again: " + check);
            assertThat(check.lost()).as("nothing skipped: " + check).isZero();
            assertThat(check.orderViolations()).isEmpty();
        }
        finally {
            for (RelayProcess relay : relays) {
                relay.close();
            }
        }
    }

    /**
     * An outbox whose aggregate id allows NULL: 200 rows, half with a NULL aggregate id and the
     * rest with non-ASCII ones, through two shards, one of whose publications was made by an
     * older relay (a filter that places NULLs nowhere). Every row must be delivered exactly once,
     * through one shard per aggregate (the NULLs all through one), and the old filter replaced
     * with a line that says what it missed.
     */
    @Test
    void rowsWithANullAggregateIdAreDeliveredByOneShard() throws Exception {
        db.execute("CREATE TABLE outbox_nullable (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype varchar(255) NOT NULL, "
                + "aggregateid varchar(255), type varchar(255) NOT NULL, payload jsonb)",
                "CREATE PUBLICATION nullable_0of2 FOR TABLE outbox_nullable WHERE ((hashtext(aggregateid::text) & 2147483647) % 2 = 0) "
                        + "WITH (publish = 'insert')");
        String exchange = broker.declareExchange("nullable", "topic");
        String queue = broker.declareQueue("nullable", exchange, "#");
        List<RelayProcess> relays = new ArrayList<>();
        try (QueueRecorder recorder = broker.record(queue)) {
            for (int k = 0; k < 2; k++) {
                Map<String, String> config = shard("nullable", exchange, k, 2);
                config.put("debezium.source.table.include.list", "public.outbox_nullable");
                relays.add(RelayProcess.start(dir, config));
            }
            for (RelayProcess relay : relays) {
                relay.awaitReady(Duration.ofSeconds(60));
            }
            db.execute("INSERT INTO outbox_nullable (aggregatetype, aggregateid, type, payload) SELECT 'order', "
                    + "CASE WHEN g % 2 = 0 THEN NULL ELSE 'Zürich-日本-ß-' || (g % 7) END, 'T', jsonb_build_object('agg', coalesce("
                    + "CASE WHEN g % 2 = 0 THEN NULL ELSE 'Zürich-日本-ß-' || (g % 7) END, '(null)'), 'seq', g) FROM generate_series(1, 200) g");
            Set<String> committed = new HashSet<>();
            try (Connection c = db.connect(); Statement st = c.createStatement(); ResultSet rs = st.executeQuery("SELECT id::text FROM outbox_nullable")) {
                while (rs.next()) {
                    committed.add(rs.getString(1));
                }
            }
            recorder.awaitIds(committed, Duration.ofSeconds(60));
            List<Delivery> deliveries = recorder.awaitQuiet(Duration.ofSeconds(2));
            DeliveryCheck check = DeliveryCheck.of(deliveries, committed);
            Map<String, Set<String>> shardsOfAggregate = new HashMap<>();
            for (Delivery d : deliveries) {
                Matcher agg = AGG.matcher(new String(d.getBody(), StandardCharsets.UTF_8));
                assertThat(agg.find()).isTrue();
                shardsOfAggregate.computeIfAbsent(agg.group(1), a -> new HashSet<>()).add(d.getProperties().getAppId());
            }
            FaultIT.report("2 shards on a nullable aggregate id, 100 of 200 rows NULL, the rest non-ASCII: " + check + ", shards per aggregate "
                    + shardsOfAggregate);
            assertThat(check.lost()).as("every row delivered: " + check).isZero();
            assertThat(check.duplicates()).isZero();
            assertThat(shardsOfAggregate).containsKey("(null)");
            assertThat(shardsOfAggregate.values()).as("each aggregate, the NULL one too, through one shard").allSatisfy(v -> assertThat(v).hasSize(1));
            assertThat(relays.get(0).log()).contains("Publication nullable_0of2 placed rows of public.outbox_nullable whose aggregateid is NULL on no shard");
        }
        finally {
            for (RelayProcess relay : relays) {
                relay.close();
            }
        }
    }

    /** Starts {@code count} shards side by side (added to {@code relays}, closed by the caller) and waits until each streams. */
    private void startShards(List<RelayProcess> relays, String name, String exchange, int count) throws Exception {
        int first = relays.size();
        for (int k = 0; k < count; k++) {
            relays.add(RelayProcess.start(dir, shard(name, exchange, k, count)));
        }
        for (RelayProcess relay : relays.subList(first, relays.size())) {
            relay.awaitReady(Duration.ofSeconds(60));
        }
    }

    private static List<String> slots(String like) throws Exception {
        List<String> slots = new ArrayList<>();
        try (Connection c = db.connect(); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE '" + like + "'")) {
            while (rs.next()) {
                slots.add(rs.getString(1));
            }
        }
        return slots;
    }
}
