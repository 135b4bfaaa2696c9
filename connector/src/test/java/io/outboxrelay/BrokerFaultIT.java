package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.client.Delivery;

import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.ServerControl;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/** The broker cuts the relay's connection mid-stream; the relay reconnects and republishes the unconfirmed tail. */
class BrokerFaultIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    private static final Pattern SEQ = Pattern.compile("\"agg\": \"([^\"]+)\", \"seq\": (\\d+)");

    @TempDir
    Path dir;

    @Test
    void connectionClosedByTheBrokerHealsWithNothingLostAndOrderKept() throws Exception {
        db.execute(RelayHarness.OUTBOX_DDL);
        String exchange = broker.declareExchange("fault", "topic");
        String queue = broker.declareQueue("fault-all", exchange, "#");
        Map<String, String> config = RelayHarness.minimalConfig(db, broker, "relay-cut");
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        int total = 4_000;
        try (QueueRecorder recorder = broker.record(queue); RelayHarness relay = RelayHarness.start(db, dir, config)) {
            Thread writer = RelayHarness.writeInBackground(db, "outbox_event", total, "a", 11);
            recorder.awaitAtLeast(500, Duration.ofSeconds(60));
            assertThat(ServerControl.closeBrokerConnections("outbox-relay relay-cut")).as("the relay's connection was found and closed").isEqualTo(1);
            writer.join();
            recorder.awaitAtLeast(total, Duration.ofSeconds(120));
            List<Delivery> deliveries = recorder.awaitQuiet(Duration.ofSeconds(2));

            Set<String> ids = new HashSet<>();
            Map<String, Integer> lastFirstSeq = new HashMap<>();
            for (Delivery d : deliveries) {
                if (!ids.add(d.getProperties().getMessageId())) {
                    continue; // a republished duplicate: same id, not a first delivery
                }
                Matcher m = SEQ.matcher(new String(d.getBody(), StandardCharsets.UTF_8));
                assertThat(m.find()).isTrue();
                int seq = Integer.parseInt(m.group(2));
                Integer previous = lastFirstSeq.put(m.group(1), seq);
                assertThat(previous == null || previous < seq).as("first deliveries of %s in order: %s after %s", m.group(1), seq, previous).isTrue();
            }
            assertThat(ids).as("nothing lost").hasSize(total);
            int duplicates = deliveries.size() - total;
            System.out.println("broker connection closed mid-stream: " + duplicates + " duplicate(s) of " + total);
            assertThat(duplicates).as("duplicates bounded by the confirm window").isLessThanOrEqualTo(1_000);
        }
    }
}
