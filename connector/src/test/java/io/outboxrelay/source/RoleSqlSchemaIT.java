package io.outboxrelay.source;

import static org.assertj.core.api.Assertions.assertThat;

import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.outboxrelay.config.DatabaseSettings;
import io.outboxrelay.deadletter.DeadLetterTable;
import io.outboxrelay.offsetstore.LeaseTable;
import io.outboxrelay.offsetstore.PostgresOffsetBackingStore;
import io.outboxrelay.sink.StreamProducerClaim;
import io.outboxrelay.testing.RelayFiles;
import io.outboxrelay.testing.TestDatabase;

/**
 * The tables {@code deploy/sql/relay-role.sql} creates for a least-privilege role are the ones the
 * relay would create itself: same columns, types, nullability, defaults and keys. A column added
 * in the code and not in the script would make a least-privilege relay fail at its first write.
 */
class RoleSqlSchemaIT {

    @RegisterExtension
    static final TestDatabase byCode = new TestDatabase();
    @RegisterExtension
    static final TestDatabase byScript = new TestDatabase();

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
        assertThat(creates).as("the script's CREATE TABLE statements").hasSize(5);
        byScript.execute(creates.toArray(String[]::new));

        for (String table : List.of("outbox_relay_offsets", "outbox_relay_dead_letter", "outbox_relay_leases", "outbox_relay_leases_members",
                StreamProducerClaim.TABLE)) {
            assertThat(shape(byScript, table)).as(table + " as relay-role.sql creates it").isEqualTo(shape(byCode, table)).isNotEmpty();
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
        }
        return shape;
    }
}
