package io.outboxrelay.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.ScratchPostgres;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

class CheckCommandIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    @TempDir
    Path dir;


    private CliRun check(Map<String, String> config) throws Exception {
        return CliRun.of("check", "--config", RelayFiles.write(dir, config).toString());
    }

    @Test
    void passesWhenEverythingIsInPlace() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "checked");
        config.put("debezium.sink.rabbitmq.exchange", broker.declareExchange("checked", "topic"));
        CliRun outcome = check(config);
        assertThat(outcome.out()).contains("[ OK ] wal_level=logical", "[ OK ] outbox table public.outbox_event exists", "[ OK ] RabbitMQ reachable",
                "exists");
        assertThat(outcome.out()).doesNotContain("[FAIL]");
        assertThat(outcome.exit()).isZero();
    }

    @Test
    void showsTheRoutingKeyOfEachKindOfEventAndWarnsWhenEveryEventGetsOneKey() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL, "INSERT INTO outbox_event (aggregatetype, aggregateid, type, payload) VALUES "
                + "('order', 'o-1', 'OrderPlaced', '{}'), ('order', 'o-1', 'OrderPaid', '{}'), ('customer', 'c-1', 'CustomerMoved', '{}')");
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "checked-routing");
        config.put("debezium.sink.rabbitmq.exchange", broker.declareExchange("checked-routing", "topic"));
        CliRun byKind = check(config);
        assertThat(byKind.out()).contains("[ OK ] routing key: ${aggregatetype}.${type} (debezium.transforms.outbox.routing.key.template), "
                + "for the kinds of event in the outbox: ").contains("order.OrderPlaced", "order.OrderPaid", "customer.CustomerMoved");
        assertThat(byKind.out()).doesNotContain("[WARN] every event goes to");

        config.put("debezium.sink.rabbitmq.routingKey", "all");
        CliRun oneKey = check(config);
        assertThat(oneKey.out()).contains("[ OK ] routing key: 'all' for every event (debezium.sink.rabbitmq.routingKey)",
                "[WARN] every event goes to topic exchange '" + config.get("debezium.sink.rabbitmq.exchange") + "' with the routing key 'all'");
        assertThat(oneKey.exit()).as("a warning is no failure").isZero();
        // A fanout exchange ignores the key: nothing to warn of.
        config.put("debezium.sink.rabbitmq.exchange", broker.declareExchange("checked-fanout", "fanout"));
        assertThat(check(config).out()).doesNotContain("[WARN] every event goes to");

        config.remove("debezium.sink.rabbitmq.routingKey");
        config.put("debezium.transforms.outbox.routing.key.template", "${aggregatetype}.${kind}");
        CliRun missing = check(config);
        assertThat(missing.out()).contains("[FAIL] the router's templates (debezium.transforms.outbox.routing.key.template=${aggregatetype}.${kind}",
                "name public.outbox_event.kind, which the outbox table does not have: every event would be dead-lettered");
        assertThat(missing.exit()).isEqualTo(1);
        // The relay itself refuses to start on it, rather than dead-lettering every event.
        try (RelayProcess relay = RelayProcess.start(dir, config)) {
            assertThat(relay.await(Duration.ofSeconds(60))).isNotZero();
            assertThat(relay.log()).contains("public.outbox_event.kind, which the outbox table does not have");
        }
    }

    @Test
    void aBusySlotNamesItsClientAndSaysThePidIsTheWalsender() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "checked-busy");
        config.put("debezium.sink.rabbitmq.exchange", broker.declareExchange("checked-busy", "topic"));
        try (io.outboxrelay.RelayHarness relay = io.outboxrelay.RelayHarness.start(db, dir, config)) {
            // The slot is active for a moment while Debezium creates it, then free until streaming starts: wait for the stream itself.
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(60)).until(() -> relay.supervisor().notReadyReason() == null);
            // Ready can come a moment before the walsender starts streaming: wait for PostgreSQL to say the slot is in use.
            org.awaitility.Awaitility.await().atMost(java.time.Duration.ofSeconds(60)).until(() -> {
                try (java.sql.Connection c = db.connect(); java.sql.Statement s = c.createStatement();
                        java.sql.ResultSet rs = s.executeQuery("SELECT count(*) FROM pg_stat_replication r JOIN pg_replication_slots p ON p.active_pid = r.pid "
                                + "WHERE p.slot_name = 'checked_busy'")) {
                    rs.next();
                    return rs.getInt(1) == 1;
                }
            });
            CliRun outcome = check(config);
            assertThat(outcome.out()).containsPattern("\\[FAIL] replication slot checked_busy is in use by 'Debezium Streaming' connected from "
                    + "127\\.0\\.0\\.1:\\d+ \\(served by PostgreSQL's walsender, PID \\d+\\); only one relay may stream from a slot");
            assertThat(outcome.out()).doesNotContain("another relay?");
        }
    }

    @Test
    void aLeastPrivilegeRoleIsToldEachGrantItLacks() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
        db.execute(RelayFiles.relayRoleTables().toArray(String[]::new));
        String role = "checked_" + Long.toHexString(System.nanoTime());
        db.execute("CREATE ROLE " + role + " LOGIN REPLICATION", "GRANT SELECT ON outbox_event TO " + role);
        try {
            Map<String, String> config = RelayFiles.minimalConfig(db, broker, "checked-role");
            config.put("debezium.source.database.user", role);
            config.put("debezium.sink.rabbitmq.exchange", broker.declareExchange("checked-role", "topic"));
            CliRun before = check(config);
            assertThat(before.out()).contains(
                    "[FAIL] publication checked_role does not exist and " + role + " may not create it (only the outbox table's owner may): run, as the "
                            + "owner, CREATE PUBLICATION checked_role FOR TABLE public.outbox_event WITH (publish = 'insert'); and set "
                            + "debezium.source.publication.autocreate.mode=disabled",
                    "[FAIL] offset table outbox_relay_offsets exists but " + role + " lacks SELECT, INSERT, UPDATE, DELETE: GRANT SELECT, INSERT, UPDATE, "
                            + "DELETE ON outbox_relay_offsets TO " + role + ";",
                    "[FAIL] dead-letter table outbox_relay_dead_letter exists but " + role + " lacks SELECT, INSERT, UPDATE: GRANT SELECT, INSERT, UPDATE ON "
                            + "outbox_relay_dead_letter TO " + role + ";",
                    "[FAIL] lease table outbox_relay_leases exists but " + role + " lacks SELECT, INSERT, UPDATE, DELETE: GRANT SELECT, INSERT, UPDATE, "
                            + "DELETE ON outbox_relay_leases TO " + role + ";",
                    "[FAIL] lease members table outbox_relay_leases_members exists but " + role + " lacks SELECT, INSERT, UPDATE, DELETE");
            assertThat(before.exit()).isEqualTo(1);
            db.execute("GRANT SELECT, INSERT, UPDATE, DELETE ON outbox_relay_leases, outbox_relay_leases_members TO " + role);

            db.execute("CREATE PUBLICATION checked_role FOR TABLE public.outbox_event WITH (publish = 'insert')",
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON outbox_relay_offsets TO " + role,
                    "GRANT SELECT, INSERT, UPDATE ON outbox_relay_dead_letter TO " + role);
            config.put("debezium.source.publication.autocreate.mode", "disabled");
            assertThat(check(config).out()).contains("[FAIL] dead-letter table outbox_relay_dead_letter is writable but its id sequence is not: "
                    + "GRANT USAGE ON SEQUENCE outbox_relay_dead_letter_id_seq TO " + role + ";");
            db.execute("GRANT USAGE ON SEQUENCE outbox_relay_dead_letter_id_seq TO " + role);
            CliRun after = check(config);
            assertThat(after.out()).contains("[ OK ] offset table outbox_relay_offsets exists and " + role + " may select, insert, update, delete",
                    "[ OK ] dead-letter table outbox_relay_dead_letter exists and " + role + " may select, insert, update",
                    "[ OK ] lease table outbox_relay_leases exists and " + role + " may select, insert, update, delete",
                    "[ OK ] publication checked_role covers public.outbox_event").doesNotContain("[FAIL]");
            assertThat(after.exit()).isZero();
        }
        finally {
            db.execute("DROP PUBLICATION IF EXISTS checked_role", "DROP OWNED BY " + role, "DROP ROLE " + role);
        }
    }

    @Test
    void checksThePublicationColumnsAgainstTheTable() throws Exception {
        db.execute(RelayFiles.OUTBOX_DDL);
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "checked-columns");
        config.put("debezium.sink.rabbitmq.exchange", broker.declareExchange("checked-columns", "topic"));
        config.put("relay.publication.columns", "id,aggregatetype,aggregateid,type,payload");
        assertThat(check(config).out()).contains("[ OK ] publication checked_columns will publish only id, aggregatetype, aggregateid, type, payload "
                + "of public.outbox_event (relay.publication.columns)");
        config.put("relay.publication.columns", "aggregatetype,aggregateid,type,body");
        CliRun outcome = check(config);
        assertThat(outcome.out()).contains("[FAIL] relay.publication.columns names body, which public.outbox_event does not have");
        assertThat(outcome.exit()).isEqualTo(1);
    }

    @Test
    void reportsADatabaseWithoutLogicalDecodingAndWhatToDo() throws Exception {
        try (ScratchPostgres replicaOnly = ScratchPostgres.start("wal_level=replica")) {
            Map<String, String> config = RelayFiles.minimalConfig(db, broker, "checked");
            config.put("debezium.source.database.port", Integer.toString(replicaOnly.port()));
            config.put("debezium.source.database.dbname", "postgres");
            config.put("debezium.sink.rabbitmq.exchange", "amq.topic");
            CliRun outcome = check(config);
            assertThat(outcome.out()).contains("[FAIL] wal_level=replica, logical decoding needs wal_level=logical")
                    .contains("ALTER SYSTEM SET wal_level = logical")
                    .contains("[FAIL] outbox table public.outbox_event does not exist");
            assertThat(outcome.exit()).isEqualTo(1);
        }
    }

    @Test
    void reportsUnreachableServersAndAMissingExchange() throws Exception {
        Map<String, String> config = RelayFiles.minimalConfig(db, broker, "checked");
        config.put("debezium.source.database.port", "1");
        config.put("debezium.sink.rabbitmq.exchange", "no-such-exchange-" + System.nanoTime());
        CliRun outcome = check(config);
        assertThat(outcome.out()).contains("[FAIL] PostgreSQL at 127.0.0.1:1/").contains("check debezium.source.database.*")
                .contains("[FAIL] exchange 'no-such-exchange-");
        assertThat(outcome.exit()).isEqualTo(1);

        config.put("debezium.sink.rabbitmq.connection.port", "1");
        assertThat(check(config).out()).contains("[FAIL] RabbitMQ at 127.0.0.1:1/").contains("debezium.sink.rabbitmq.connection.*");
    }

    @Test
    void invalidConfigurationGetsOneLinePerProblem() throws Exception {
        CliRun outcome = check(Map.of("relay.on-invalid", "explode", "debezium.sink.rabbitmq.deliveryMode", "3",
                "debezium.sink.rabbitmq.ackTimout", "5"));
        assertThat(outcome.exit()).isEqualTo(2);
        assertThat(outcome.err().lines()).contains(
                "config: relay.on-invalid=explode is not one of dead-letter, fail",
                "config: debezium.sink.rabbitmq.deliveryMode=3 is out of range: use 1..2",
                "config: debezium.source.database.hostname is required: the PostgreSQL host");
        assertThat(outcome.err()).contains("config: debezium.sink.rabbitmq.ackTimout is not a setting of the RabbitMQ sink");
        assertThat(outcome.err()).doesNotContain("Exception").doesNotContain("\tat ");
    }
}
