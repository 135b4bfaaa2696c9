package io.outboxrelay.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.client.Delivery;

import io.outboxrelay.RelayHarness;
import io.outboxrelay.testing.Progress;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/** {@code status} and {@code redrive} against a relay that parked events it could not route. */
class StatusAndRedriveIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    /** How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. */
    private static final Duration STALL = Duration.ofSeconds(30);

    @TempDir
    Path dir;


    @BeforeAll
    static void outbox() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
    }

    private static CliRun cli(String... args) {
        return CliRun.of(args);
    }

    @Test
    void statusShowsTheSlotOffsetAndBacklogAndRedriveRepublishesWithTheOriginalIds() throws Exception {
        String exchange = broker.declareExchange("redriven", "topic");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "redriven");
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("debezium.transforms.outbox.routing.key.template", "${aggregatetype}");
        Path file = dir.resolve("relay.properties");
        Files.writeString(file, config.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining("\n")));

        CliRun before = cli("status", "--config", file.toString());
        assertThat(before.exit()).isEqualTo(1);
        assertThat(before.out()).contains("does not exist: the relay has not run yet");

        try (RelayHarness relay = RelayHarness.startFile(db, file)) {
            // No queue is bound yet: all three are returned and parked; the null payload is invalid.
            RelayHarness.insert(db, new String[] { "invoice", "i-1", "InvoiceSent", "{\"n\": 1}" },
                    new String[] { "invoice", "i-2", "InvoiceSent", "{\"n\": 2}" },
                    new String[] { "shipment", "s-1", "Shipped", "{\"n\": 3}" },
                    new String[] { "invoice", "i-3", "InvoiceSent", null });
            waitForParked(4);

            CliRun status = cli("status", "--config", file.toString());
            assertThat(status.exit()).as(status.err()).isZero();
            assertThat(status.out()).contains("connected      yes, by 'Debezium Streaming' connected from ", "(served by PostgreSQL's walsender, PID ", "lag ", "retained WAL ", "dead letters   4 parked in outbox_relay_dead_letter")
                    .as("no Java record in a person's output").doesNotContain("DatabaseSettings[")
                    .containsPattern("stored offset  lsn [0-9A-F]+/[0-9A-F]+, source commit ");

            String invoices = broker.declareQueue("invoices", exchange, "invoice");
            List<String> ids = eventIds("invoice", "i-1", "i-2");
            try (QueueRecorder recorder = broker.record(invoices)) {
                CliRun redrive = cli("redrive", "--config", file.toString(), "--id", ids.get(0) + "," + ids.get(1));
                assertThat(redrive.out()).contains("2 republished, 0 still unroutable, 0 not re-drivable");
                assertThat(redrive.exit()).isZero();
                List<Delivery> got = recorder.awaitAtLeast(2, Duration.ofSeconds(20));
                assertThat(got).extracting(d -> d.getProperties().getMessageId()).containsExactlyElementsOf(ids);
                assertThat(got).allSatisfy(d -> {
                    assertThat(d.getEnvelope().getRoutingKey()).isEqualTo("invoice");
                    assertThat(d.getProperties().getType()).isEqualTo("InvoiceSent");
                    assertThat(d.getProperties().getDeliveryMode()).isEqualTo(2);
                });

                // The shipment still has no binding, and the invalid row cannot become a message.
                CliRun rest = cli("redrive", "--config", file.toString(), "--all");
                assertThat(rest.exit()).isEqualTo(1);
                assertThat(rest.out()).contains("0 republished, 1 still unroutable, 1 not re-drivable", "payload");
                assertThat(recorder.awaitQuiet(Duration.ofSeconds(1))).hasSize(2);
            }

            try (Connection c = db.connect(); Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SELECT count(*) FILTER (WHERE redriven_at IS NOT NULL), count(*) FROM outbox_relay_dead_letter")) {
                rs.next();
                assertThat(rs.getInt(1)).isEqualTo(2);
                assertThat(rs.getInt(2)).isEqualTo(4);
            }
            assertThat(cli("status", "--config", file.toString()).out()).contains("dead letters   2 parked");
        }
        CliRun stopped = cli("status", "--config", file.toString());
        assertThat(stopped.out()).contains("connected      no relay is streaming from the slot");
    }

    @Test
    void redriveNeedsASelection() {
        CliRun outcome = cli("redrive", "--config", "/nonexistent.properties");
        assertThat(outcome.exit()).isEqualTo(2);
        assertThat(outcome.err()).contains("--all", "--id");
    }

    private static void waitForParked(int count) throws Exception {
        // Until the relay has made the table the query fails, which counts as no progress.
        Progress.atLeast("dead letters", count, STALL, () -> {
            try (Connection c = db.connect(); Statement s = c.createStatement();
                    ResultSet rs = s.executeQuery("SELECT count(*) FROM outbox_relay_dead_letter WHERE to_regclass('outbox_relay_dead_letter') IS NOT NULL")) {
                return rs.next() ? rs.getInt(1) : 0;
            }
        });
    }

    private static List<String> eventIds(String type, String... aggregates) throws Exception {
        try (Connection c = db.connect(); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT id::text FROM outbox_event WHERE aggregatetype = '" + type + "' AND aggregateid IN ('"
                        + String.join("','", aggregates) + "') ORDER BY aggregateid")) {
            List<String> ids = new java.util.ArrayList<>();
            while (rs.next()) {
                ids.add(rs.getString(1));
            }
            return ids;
        }
    }

}
