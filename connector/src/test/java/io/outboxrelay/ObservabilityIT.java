package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;
import static org.awaitility.Awaitility.await;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.rabbitmq.client.Delivery;

import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.Progress;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ServerControl;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/** The relay process as an operator sees it: probes, Prometheus metrics and logs, while events flow and the broker blocks. */
class ObservabilityIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    /** Trust authentication accepts any password, so a secret can be configured and looked for in the logs. */
    private static final String SECRET = "pg-s3cret-" + System.nanoTime();
    /** How long a count may stand still before a wait fails: waits follow progress, not a bound sized for one machine. */
    private static final Duration STALL = Duration.ofSeconds(30);

    @TempDir
    Path dir;

    @BeforeAll
    static void outbox() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
    }

    /** Metric names in a scrape, with histogram and counter suffixes kept as they are queried. */
    private static Set<String> exposedNames(String scrape) {
        Set<String> names = new TreeSet<>();
        for (String line : scrape.split("\n")) {
            if (!line.startsWith("#") && !line.isBlank()) {
                names.add(line.split("[{ ]", 2)[0]);
            }
        }
        return names;
    }

    /** The outbox-relay and JVM metric names deploy/'s dashboard and alert rules query. */
    private static Set<String> usedByDeploy() throws Exception {
        Path deploy = Path.of(System.getProperty("user.dir")).getParent().resolve("deploy");
        String text = Files.readString(deploy.resolve("grafana/outbox-relay-dashboard.json"))
                + Files.readString(deploy.resolve("prometheus/outbox-relay-alerts.yaml"));
        Set<String> names = new TreeSet<>();
        Matcher m = Pattern.compile("\\b((?:outbox_relay|jvm)_[a-z_]+)").matcher(text);
        while (m.find()) {
            names.add(m.group(1));
        }
        assertThat(names).hasSizeGreaterThan(10);
        return names;
    }

    @Test
    void metricsMoveWithTheStreamReadinessFollowsTheBrokerAndJsonLogsKeepSecretsOut() throws Exception {
        String exchange = broker.declareExchange("observed", "topic");
        String queue = broker.declareQueue("observed-orders", exchange, "order.#");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "observed");
        config.put("debezium.source.database.password", SECRET);
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("debezium.transforms.outbox.routing.key.template", "${aggregatetype}.${type}");
        config.put("relay.log.format", "json");
        config.put("relay.metrics.poll.ms", "500");
        String sample = "{exchange=\"" + exchange + "\",relay=\"observed\"}";

        try (QueueRecorder recorder = broker.record(queue); RelayProcess relay = RelayProcess.start(dir, config)) {
            relay.awaitReady(Duration.ofSeconds(60));
            assertThat(relay.get("/q/health/live").status()).isEqualTo(200);
            assertThat(relay.get("/health/ready").body()).isEqualTo("{\"status\":\"UP\"}");

            for (int i = 0; i < 20; i++) {
                RelayHarness.insert(db, new String[] { "order", "o-" + (i % 4), "OrderPlaced", "{\"n\": " + i + "}" });
            }
            // Routed nowhere: returned by the broker and parked.
            RelayHarness.insert(db, new String[] { "invoice", "i-1", "InvoiceSent", "{\"n\": 0}" });
            recorder.awaitAtLeast(20, Duration.ofSeconds(60));

            // Each counter only rises to its expected value, so their sum reaches 45 when each has; the slot's gauges come with a poll.
            Progress.until("the event counters to sum to 45 and the slot gauges to be set", STALL,
                    () -> (long) (relay.metric("outbox_relay_events_confirmed_total" + sample) + relay.metric("outbox_relay_events_published_total" + sample)
                            + relay.metric("outbox_relay_events_returned_total" + sample) + relay.metric("outbox_relay_events_dead_lettered_total" + sample)
                            + relay.metric("outbox_relay_dead_letters{relay=\"observed\"}")),
                    counted -> counted >= 21 + 21 + 1 + 1 + 1 && relay.metric("outbox_relay_slot_active{relay=\"observed\"}") == 1
                            && relay.metric("outbox_relay_slot_retained_wal_bytes{relay=\"observed\"}") > 0
                            && relay.metric("outbox_relay_offset_lsn{relay=\"observed\"}") > 0);
            assertThat(relay.metric("outbox_relay_events_confirmed_total" + sample)).isEqualTo(21);
            assertThat(relay.metric("outbox_relay_events_published_total" + sample)).isEqualTo(21);
            assertThat(relay.metric("outbox_relay_events_returned_total" + sample)).isEqualTo(1);
            assertThat(relay.metric("outbox_relay_events_dead_lettered_total" + sample)).isEqualTo(1);
            assertThat(relay.metric("outbox_relay_dead_letters{relay=\"observed\"}")).isEqualTo(1);
            String metrics = relay.get("/q/metrics").body();
            assertThat(metrics).contains("outbox_relay_confirm_latency_seconds_bucket", "outbox_relay_commit_to_confirm_latency_seconds_count",
                    "outbox_relay_batch_size_records_count", "outbox_relay_slot_lag_bytes", "outbox_relay_in_flight",
                    "outbox_relay_broker_reconnects_total", "outbox_relay_engine_restarts_total", "outbox_relay_source_behind_seconds",
                    "jvm_memory_used_bytes", "outbox_relay_broker_blocked{relay=\"observed\"} 0");
            assertThat(relay.metric("outbox_relay_commit_to_confirm_latency_seconds_count{relay=\"observed\"}")).isEqualTo(21);
            assertThat(relay.metric("outbox_relay_events_nacked_total" + sample)).as("counters exist before the first nack").isZero();
            assertThat(exposedNames(metrics)).as("every metric the dashboard and the alerts use is exposed").containsAll(usedByDeploy());

            String watermark = ServerControl.raiseMemoryAlarm();
            try {
                RelayHarness.insert(db, new String[] { "order", "o-blocked", "OrderPlaced", "{\"n\": 100}" });
                await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> {
                    RelayProcess.Answer ready = relay.get("/q/health/ready");
                    assertThat(ready.status()).isEqualTo(503);
                    assertThat(ready.body()).contains("RabbitMQ blocks publishing");
                    assertThat(relay.metric("outbox_relay_broker_blocked{relay=\"observed\"}")).isEqualTo(1);
                });
                assertThat(relay.get("/q/health/live").status()).as("blocked is not dead").isEqualTo(200);
            }
            finally {
                ServerControl.clearMemoryAlarm(watermark);
            }
            await().atMost(Duration.ofSeconds(60)).untilAsserted(() -> assertThat(relay.get("/q/health/ready").status()).isEqualTo(200));
            List<Delivery> all = recorder.awaitAtLeast(21, Duration.ofSeconds(30));
            assertThat(all).hasSize(21);

            assertThat(relay.stop()).as("exit after SIGTERM (128+15)").isEqualTo(143);
            String log = relay.log();
            assertThat(log.strip().lines().reduce((a, b) -> b).orElse("")).as("the last line says it stopped")
                    .contains("Stopped: everything confirmed is acknowledged");
            assertThat(log).doesNotContain(SECRET).doesNotContain("password=guest");
            assertThat(log).as("the access trail (JSON lines here): every connection, with server, user and TLS facts")
                    .contains("\"loggerName\":\"io.outboxrelay.audit\"")
                    .containsPattern("\"arguments\": \\[\"PostgreSQL\",\"outbox-relay dead letters\",\"127\\.0\\.0\\.1:\\d+\\\\/\\w+\",\"postgres\","
                            + "\"not TLS \\(sslmode=prefer\\)\"]")
                    .containsPattern("\"arguments\": \\[\"RabbitMQ\",\"outbox-relay observed\",\"127\\.0\\.0\\.1:\\d+\\\\/\",\"guest\",\"not TLS\"]")
                    .contains("\"loggerName\":\"io.outboxrelay.offsetstore.PostgresOffsetStoreConfig\"")
                    .containsPattern("\"message\":\"PostgreSQL connection opened for \\{}: \\{} as \\{}, sslmode=\\{}\",\"arguments\": \\[\"outbox-relay offset store\"");
            ObjectMapper json = new ObjectMapper();
            boolean sawEventLine = false;
            for (String line : log.split("\n")) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode node = json.readTree(line);
                assertThat(node.has("level") && node.has("message")).as("a JSON log line: %s", line).isTrue();
                if (node.path("message").asText().contains("not delivered")) {
                    assertThat(node.path("kvpList").toString()).contains("event_id", "aggregate_id", "i-1");
                    sawEventLine = true;
                }
            }
            assertThat(sawEventLine).as("the unroutable event was logged with its id and aggregate").isTrue();
        }
    }
}
