package io.outboxrelay.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.client.Delivery;

import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/** {@code replay}: rows still in the outbox, selected by time, aggregate or type, published again with their ids and today's routing. */
class ReplayIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    @TempDir
    static Path dir;

    private static final Instant NOW = Instant.now();

    @BeforeAll
    static void rows() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
        StringBuilder insert = new StringBuilder("INSERT INTO outbox_event (id, aggregatetype, aggregateid, type, payload, created_at) VALUES ");
        String[][] rows = {
                { "00000000-0000-0000-0000-000000000001", "order", "o-1", "OrderPlaced", "120 minutes" },
                { "00000000-0000-0000-0000-000000000002", "order", "o-1", "OrderPaid", "60 minutes" },
                { "00000000-0000-0000-0000-000000000003", "order", "o-2", "OrderPlaced", "59 minutes" },
                { "00000000-0000-0000-0000-000000000004", "customer", "c-1", "CustomerMoved", "58 minutes" },
                { "00000000-0000-0000-0000-000000000005", "order", "o-1", "OrderShipped", "1 minute" } };
        for (int i = 0; i < rows.length; i++) {
            String[] r = rows[i];
            insert.append(i == 0 ? "" : ", ").append("('").append(r[0]).append("', '").append(r[1]).append("', '").append(r[2]).append("', '")
                    .append(r[3]).append("', '{\"n\": ").append(i).append("}', timestamptz '").append(NOW).append("' - interval '").append(r[4]).append("')");
        }
        db.execute(insert.toString());
    }

    private Map<String, String> config(String exchange) {
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "replayed");
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("debezium.transforms.outbox.routing.key.template", "${aggregatetype}.${type}");
        return config;
    }

    @Test
    void aTimeRangeIsPublishedAgainWithItsIdsAndTheCurrentRouting() throws Exception {
        String exchange = broker.declareExchange("replayed", "topic");
        String queue = broker.declareQueue("replayed", exchange, "#");
        String file = RelayFiles.write(dir, config(exchange)).toString();
        try (QueueRecorder recorder = broker.record(queue)) {
            CliRun run = CliRun.of("replay", "--config", file, "--since", NOW.minusSeconds(90 * 60).toString(), "--until", NOW.minusSeconds(30 * 60).toString());
            assertThat(run.exit()).as(run.out() + run.err()).isZero();
            assertThat(run.out()).contains("3 published and confirmed, 0 unroutable, 0 not a message");
            List<Delivery> got = recorder.awaitAtLeast(3, Duration.ofSeconds(10));
            Thread.sleep(500);
            assertThat(recorder.deliveries()).extracting(d -> d.getProperties().getMessageId()).as("exactly the range, in time order")
                    .containsExactly("00000000-0000-0000-0000-000000000002", "00000000-0000-0000-0000-000000000003", "00000000-0000-0000-0000-000000000004");
            assertThat(got).extracting(d -> d.getEnvelope().getRoutingKey()).containsExactly("order.OrderPaid", "order.OrderPlaced", "customer.CustomerMoved");
            assertThat(got.get(0).getProperties().getType()).isEqualTo("OrderPaid");
            assertThat(new String(got.get(0).getBody())).as("jsonb as PostgreSQL prints it, as the stream has it").isEqualTo("{\"n\": 1}");
        }
        try (Connection c = db.connect(); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'replayed'")) {
            rs.next();
            assertThat(rs.getInt(1)).as("replay reads the table, it never makes or moves a slot").isZero();
        }
    }

    @Test
    void oneAggregateToAnotherExchangeOrADryRun() throws Exception {
        String exchange = broker.declareExchange("replayed-main", "topic");
        String other = broker.declareExchange("replayed-other", "fanout");
        String queue = broker.declareQueue("replayed-other", other, "");
        String file = RelayFiles.write(dir, config(exchange)).toString();
        CliRun dry = CliRun.of("replay", "--config", file, "--aggregate-id", "o-1", "--dry-run");
        assertThat(dry.out()).contains("3 would be published, 0 unroutable");
        try (QueueRecorder recorder = broker.record(queue)) {
            CliRun run = CliRun.of("replay", "--config", file, "--aggregate-id", "o-1", "--type", "OrderPlaced", "--exchange", other);
            assertThat(run.exit()).as(run.out() + run.err()).isZero();
            assertThat(recorder.awaitAtLeast(1, Duration.ofSeconds(10))).extracting(d -> d.getProperties().getMessageId())
                    .containsExactly("00000000-0000-0000-0000-000000000001");
        }
        CliRun unroutable = CliRun.of("replay", "--config", RelayFiles.write(dir, config(broker.declareExchange("replayed-nowhere", "topic"))).toString(),
                "--aggregate-type", "customer");
        assertThat(unroutable.exit()).isEqualTo(1);
        assertThat(unroutable.out()).contains("unroutable       00000000-0000-0000-0000-000000000004", "0 published and confirmed, 1 unroutable");
        assertThat(CliRun.of("replay", "--config", file, "--since", "yesterday").err()).contains("--since/--until must be ISO-8601 instants");
    }
}
