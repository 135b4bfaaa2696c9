package io.outboxrelay.source;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import io.outboxrelay.config.DatabaseSettings;
import io.outboxrelay.config.RelayConfigLoader;
import io.outboxrelay.sink.amqp.AmqpRepublisher;
import io.outboxrelay.deadletter.DeadLetterRedriver;
import io.outboxrelay.deadletter.DeadLetterTable;
import io.outboxrelay.deadletter.Redrive;
import io.outboxrelay.deadletter.Republisher;
import io.outboxrelay.sink.stream.StreamRepublisher;
import io.outboxrelay.offsetstore.LeaseTable;
import io.outboxrelay.offsetstore.PostgresOffsetBackingStore;
import io.outboxrelay.sink.stream.StreamProducerClaim;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;
import io.outboxrelay.testing.TestStreams;

/**
 * The tables {@code deploy/sql/relay-role.sql} creates for a least-privilege role are the ones the
 * relay would create itself: same columns, types, nullability, defaults, keys and indexes. A column added
 * in the code and not in the script would make a least-privilege relay fail at its first write.
 */
class RoleSqlSchemaIT {

    @RegisterExtension
    static final TestDatabase byCode = new TestDatabase();
    @RegisterExtension
    static final TestDatabase byScript = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();
    @RegisterExtension
    static final TestStreams streams = new TestStreams();

    @TempDir
    Path dir;

    @Test
    void theRoleScriptCreatesTheTablesTheRelayWould() throws Exception {
        DatabaseSettings database = new DatabaseSettings(byCode.server().host(), byCode.server().port(), byCode.server().user(),
                byCode.server().password(), byCode.name());
        try (DeadLetterTable deadLetters = new DeadLetterTable(database, "outbox_relay_dead_letter", "schema-check")) {
            deadLetters.createIfMissing();
        }
        PostgresOffsetBackingStore store = new PostgresOffsetBackingStore();
        store.configure(Map.of("offset.storage.postgres.url", byCode.jdbcUrl(), "offset.storage.postgres.user", byCode.server().user(), "name", "schema-check"));
        store.start();
        store.stop();
        try (Connection c = byCode.connect()) {
            new LeaseTable(LeaseTable.DEFAULT_TABLE).createIfMissing(c);
            StreamProducerClaim.createIfMissing(c, StreamProducerClaim.TABLE);
        }

        List<String> creates = RelayFiles.relayRoleTables();
        assertThat(creates).as("the script's CREATE TABLE and CREATE INDEX statements").hasSize(6);
        byScript.execute(creates.toArray(String[]::new));

        for (String table : List.of("outbox_relay_offsets", "outbox_relay_dead_letter", "outbox_relay_leases", "outbox_relay_leases_members",
                StreamProducerClaim.TABLE)) {
            assertThat(shape(byScript, table)).as(table + " as relay-role.sql creates it").isEqualTo(shape(byCode, table)).isNotEmpty();
        }
    }

    /**
     * A dead-letter table made by the earlier script (no redrive_publishing_id) and a role that does
     * not own it: the relay goes on (and says what to run), a redrive over AMQP works without the
     * column, a redrive into a stream refuses to start, naming the ALTER TABLE.
     */
    @Test
    void aDeadLetterTableOfTheEarlierScriptKeepsWorkingForARoleThatMayNotAlterIt() throws Exception {
        String role = "dl_limited_" + Long.toString(System.nanoTime(), 36);
        byScript.execute("CREATE TABLE old_dead_letter (id bigserial PRIMARY KEY, relay_name text NOT NULL, event_id text, reason text NOT NULL, "
                        + "exchange text, routing_key text, payload bytea, headers jsonb, source_topic text, aggregate_id text, "
                        + "created_at timestamptz NOT NULL DEFAULT now(), redriven_at timestamptz, UNIQUE (relay_name, event_id, reason))",
                "CREATE ROLE " + role + " LOGIN PASSWORD 'limited'",
                "GRANT SELECT, INSERT, UPDATE ON old_dead_letter TO " + role,
                "GRANT USAGE ON SEQUENCE old_dead_letter_id_seq TO " + role);
        try {
            DatabaseSettings limited = new DatabaseSettings(byScript.server().host(), byScript.server().port(), role, "limited", byScript.name());
            try (DeadLetterTable table = new DeadLetterTable(limited, "old_dead_letter", "old")) {
                table.createIfMissing();
            }
            assertThat(shape(byScript, "old_dead_letter")).noneMatch(c -> c.startsWith("redrive_publishing_id"));
            DeadLetterRedriver redriver = new DeadLetterRedriver(limited, "old_dead_letter", "old", true);
            try (Republisher amqp = new AmqpRepublisher(broker.connectionFactory(), "role check", Duration.ofSeconds(10))) {
                assertThat(redriver.redrive(Redrive.all(), amqp, line -> { }).republished()).isEmpty();
            }
            Path file = RelayFiles.write(dir, RelayFiles.intoStream(RelayFiles.minimalConfig(byScript, broker, "old"), streams.server().host(),
                    streams.server().port(), broker.server().user(), broker.server().password(), streams.uniqueName("old", 0)));
            try (Republisher stream = new StreamRepublisher(RelayConfigLoader.load(file, null).stream(), "role check")) {
                assertThatThrownBy(() -> redriver.redrive(Redrive.all(), stream, line -> { }))
                        .isInstanceOf(SQLException.class)
                        .hasMessageContaining("ALTER TABLE old_dead_letter ADD COLUMN redrive_publishing_id bigint");
            }
        }
        finally {
            byScript.execute("DROP TABLE old_dead_letter", "DROP ROLE " + role);
        }
    }

    /** Columns (name, type, nullability, default) and keys of a table, as text to compare. */
    private static List<String> shape(TestDatabase db, String table) throws Exception {
        List<String> shape = new ArrayList<>();
        try (Connection c = db.connect(); Statement s = c.createStatement()) {
            try (ResultSet rs = s.executeQuery("SELECT column_name, data_type, is_nullable, coalesce(column_default, '') FROM information_schema.columns "
                    + "WHERE table_schema = 'public' AND table_name = '" + table + "' ORDER BY ordinal_position")) {
                while (rs.next()) {
                    shape.add(rs.getString(1) + " " + rs.getString(2) + " null=" + rs.getString(3) + " default=" + rs.getString(4));
                }
            }
            try (ResultSet rs = s.executeQuery("SELECT contype::text || ' ' || pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'public." + table
                    + "'::regclass ORDER BY 1")) {
                while (rs.next()) {
                    shape.add(rs.getString(1));
                }
            }
            try (ResultSet rs = s.executeQuery("SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = '" + table + "' ORDER BY 1")) {
                while (rs.next()) {
                    shape.add(rs.getString(1));
                }
            }
        }
        return shape;
    }
}
