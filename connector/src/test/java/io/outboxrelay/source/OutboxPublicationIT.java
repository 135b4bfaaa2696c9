package io.outboxrelay.source;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.client.Delivery;

import io.outboxrelay.RelayHarness;
import io.outboxrelay.config.DatabaseSettings;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/**
 * The publication's column lists against a real PostgreSQL: those relay.publication.columns names,
 * or by default those the router's configuration reads, following that configuration; events still
 * flowing either way.
 */
class OutboxPublicationIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    private static final String ROUTED = "id,aggregatetype,aggregateid,type,payload";

    @TempDir
    Path dir;

    @BeforeAll
    static void outbox() throws Exception {
        // The test outbox also has created_at and tracingspancontext, which the router does not need here.
        db.execute(RelayFiles.OUTBOX_DDL);
    }

    @Test
    void publishesOnlyTheListedColumnsUntilTheSettingIsRemovedAndEveryEventArrivesEitherWay() throws Exception {
        String exchange = broker.declareExchange("columns", "topic");
        String queue = broker.declareQueue("columns-all", exchange, "#");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "relay-columns");
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("relay.publication.columns", ROUTED);
        try (QueueRecorder recorder = broker.record(queue)) {
            try (RelayHarness relay = RelayHarness.start(db, dir, config)) {
                assertThat(publishedColumns("relay_columns")).isEqualTo("{id,aggregatetype,aggregateid,type,payload}");
                assertThat(publishes("relay_columns")).isEqualTo("insert");
                RelayHarness.insert(db, new String[] { "order", "o-1", "OrderPlaced", "{\"n\": 1}" });
                assertThat(recorder.awaitAtLeast(1, Duration.ofSeconds(60)))
                        .extracting(d -> new String(d.getBody(), StandardCharsets.UTF_8)).containsExactly("{\"n\": 1}");
            }
            // Without the setting: what the router's configuration reads (its defaults here, and the tracing column), not created_at.
            config.remove("relay.publication.columns");
            try (RelayHarness relay = RelayHarness.start(db, dir, config)) {
                assertThat(publishedColumns("relay_columns")).isEqualTo("{id,aggregatetype,aggregateid,type,payload,tracingspancontext}");
                RelayHarness.insert(db, new String[] { "order", "o-1", "OrderShipped", "{\"n\": 2}" });
                List<Delivery> deliveries = recorder.awaitAtLeast(2, Duration.ofSeconds(60));
                assertThat(deliveries).extracting(d -> d.getProperties().getType()).containsExactly("OrderPlaced", "OrderShipped");
                assertThat(deliveries).allSatisfy(d -> assertThat(d.getProperties().getMessageId()).matches("[0-9a-f-]{36}"));
            }
            // The router now places created_at in a header: the next start publishes that column too, and the header arrives.
            config.put("debezium.transforms.outbox.table.fields.additional.placement", "created_at:header:createdAt");
            try (RelayHarness relay = RelayHarness.start(db, dir, config)) {
                assertThat(publishedColumns("relay_columns")).isEqualTo("{id,aggregatetype,aggregateid,type,payload,created_at,tracingspancontext}");
                RelayHarness.insert(db, new String[] { "order", "o-1", "OrderPaid", "{\"n\": 3}" });
                List<Delivery> deliveries = recorder.awaitAtLeast(3, Duration.ofSeconds(60));
                assertThat(deliveries.get(2).getProperties().getHeaders()).containsKey("createdAt");
            }
            // And without the placement again, the column goes; with '*' every column is sent.
            config.remove("debezium.transforms.outbox.table.fields.additional.placement");
            try (RelayHarness relay = RelayHarness.start(db, dir, config)) {
                assertThat(publishedColumns("relay_columns")).isEqualTo("{id,aggregatetype,aggregateid,type,payload,tracingspancontext}");
            }
            config.put("relay.publication.columns", "*");
            try (RelayHarness relay = RelayHarness.start(db, dir, config)) {
                assertThat(publishedColumns("relay_columns")).as("no column list: every column")
                        .isEqualTo("{id,aggregatetype,aggregateid,type,payload,created_at,tracingspancontext}");
                assertThat(query("SELECT count(*) FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid WHERE p.pubname = ? "
                        + "AND r.prattrs IS NOT NULL", "relay_columns")).isEqualTo("0");
            }
        }
    }

    @Test
    void aRowWithoutAColumnTheRouterNeedsIsDeadLetteredNotDropped() throws Exception {
        String exchange = broker.declareExchange("columns-missing", "topic");
        String queue = broker.declareQueue("columns-missing-all", exchange, "#");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "relay-columns-missing");
        config.put("debezium.sink.rabbitmq.exchange", exchange);
        config.put("relay.publication.columns", "id,aggregateid,type,payload"); // no aggregatetype, which routes the event
        try (QueueRecorder recorder = broker.record(queue); RelayHarness relay = RelayHarness.start(db, dir, config)) {
            RelayHarness.insert(db, new String[] { "order", "o-2", "OrderPlaced", "{\"n\": 3}" });
            String reason = null;
            for (int i = 0; i < 600 && reason == null; i++) {
                reason = query("SELECT reason FROM outbox_relay_dead_letter WHERE relay_name = ?", "relay-columns-missing");
                Thread.sleep(100);
            }
            assertThat(recorder.awaitQuiet(Duration.ofSeconds(1))).isEmpty();
            assertThat(reason).contains("aggregatetype");
        }
    }

    @Test
    void aColumnTheTableLacksOrALeftOutKeyIsNamedWithTheSetting() {
        assertThatThrownBy(() -> publication(List.of("id", "aggregatetype", "payload", "occurred_at")).prepare())
                .isInstanceOf(SQLException.class)
                .hasMessageStartingWith("relay.publication.columns names occurred_at, which public.outbox_event does not have")
                .hasMessageContaining("created_at");
        assertThatThrownBy(() -> publication(List.of("aggregatetype", "payload")).prepare())
                .isInstanceOf(SQLException.class)
                .hasMessageStartingWith("relay.publication.columns must include the primary key of public.outbox_event (id)");
    }

    private static OutboxPublication publication(List<String> columns) {
        DatabaseSettings database = new DatabaseSettings(db.server().host(), db.server().port(), db.server().user(), db.server().password(), db.name());
        return new OutboxPublication(database, "never_created", List.of("public.outbox_event"), columns);
    }

    private static String publishedColumns(String publication) throws SQLException {
        return query("SELECT attnames::text FROM pg_publication_tables WHERE pubname = ? AND tablename = 'outbox_event'", publication);
    }

    private static String publishes(String publication) throws SQLException {
        return query("SELECT concat_ws(',', CASE WHEN pubinsert THEN 'insert' END, CASE WHEN pubupdate THEN 'update' END, "
                + "CASE WHEN pubdelete THEN 'delete' END, CASE WHEN pubtruncate THEN 'truncate' END) FROM pg_publication WHERE pubname = ?", publication);
    }

    private static String query(String sql, String parameter) throws SQLException {
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement(sql)) {
            ps.setString(1, parameter);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() ? rs.getString(1) : null;
            }
        }
    }
}
