package io.outboxrelay;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.time.Duration;
import java.util.Map;
import java.util.Set;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import io.outboxrelay.cli.CliRun;
import io.outboxrelay.testing.OutboxWriter;
import io.outboxrelay.testing.Progress;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ServerControl;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/**
 * Outbox retention deletes what was relayed and never what was not: with RabbitMQ stopped nothing
 * is confirmed, the offset stands still, and rows written meanwhile must survive every run until
 * the broker is back and they are delivered.
 */
class RetentionIT {

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

    private static int rows(String prefix) throws Exception {
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM outbox_event WHERE aggregateid LIKE ?")) {
            ps.setString(1, prefix + "%");
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }

    private static Set<String> write(String prefix, int events) throws Exception {
        try (OutboxWriter writer = OutboxWriter.start(db::connect, "outbox_event", prefix, 5, events, 0)) {
            writer.awaitDone(STALL);
        }
        return OutboxWriter.committedIds(db::connect, "outbox_event", prefix);
    }

    @Test
    void checkNamesAMissingColumnAndTheMissingGrant() throws Exception {
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "retention-check");
        config.put("relay.outbox.retention.ms", "86400000");
        assertThat(CliRun.of("check", "--config", RelayFiles.write(dir, config).toString()).out())
                .contains("[ OK ] outbox retention deletes rows of public.outbox_event older than 86400000 ms by created_at, once behind the stored offset");
        config.put("relay.outbox.retention.column", "written_at");
        assertThat(CliRun.of("check", "--config", RelayFiles.write(dir, config).toString()).out())
                .contains("[FAIL] outbox table public.outbox_event has no column written_at: set relay.outbox.retention.column");
        String role = "retainer_" + Long.toHexString(System.nanoTime());
        db.execute("CREATE ROLE " + role + " LOGIN REPLICATION", "GRANT SELECT ON outbox_event TO " + role);
        try {
            config.put("relay.outbox.retention.column", "created_at");
            config.put("debezium.source.database.user", role);
            assertThat(CliRun.of("check", "--config", RelayFiles.write(dir, config).toString()).out())
                    .contains("[FAIL] outbox retention (relay.outbox.retention.ms) deletes from public.outbox_event but " + role
                            + " may not: GRANT DELETE ON public.outbox_event TO " + role + ";");
        }
        finally {
            db.execute("DROP OWNED BY " + role, "DROP ROLE " + role);
        }
    }

    @Test
    void retentionDeletesOnlyWhatTheStoredOffsetHasPassed() throws Exception {
        String exchange = broker.declareExchange("retained", "topic");
        String queue = broker.declareQueue("retained", exchange, "#");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "retained");
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("relay.outbox.retention.ms", "1");
        config.put("relay.outbox.retention.interval.ms", "300");
        config.put("relay.outbox.retention.batch", "50");
        try (RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60))) {
            // Closed before the broker stops: amqp-client would recover this consumer afterwards and take half of what comes.
            try (QueueRecorder recorder = broker.record(queue)) {
                Set<String> first = write("ret-a", 200);
                recorder.awaitIds(first, Duration.ofSeconds(60));
            }
            Progress.exactly("outbox rows of ret-a left", 0, STALL, () -> rows("ret-a"));
            assertThat(relay.metric("outbox_relay_outbox_rows_deleted_total{relay=\"retained\"}")).isEqualTo(200);

            ServerControl.stopRabbitMq();
            Set<String> second;
            try {
                second = write("ret-b", 100);
                Thread.sleep(3_000);
                assertThat(rows("ret-b")).as("nothing confirmed, so nothing deleted, after ten runs").isEqualTo(100);
            }
            finally {
                ServerControl.startRabbitMq();
            }
            try (QueueRecorder again = broker.record(queue)) {
                again.awaitIds(second, Duration.ofSeconds(60));
            }
            Progress.exactly("outbox rows of ret-b left", 0, STALL, () -> rows("ret-b"));
            assertThat(relay.log()).contains("Outbox retention: rows older than 1 ms and behind the stored offset are deleted every 300 ms");
        }
    }
}
