package io.outboxrelay.offsetstore;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.data.Struct;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.outboxrelay.testing.ServerControl;
import io.outboxrelay.testing.TestDatabase;
import io.outboxrelay.testing.TestEngine;

class PostgresOffsetBackingStoreIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private PostgresOffsetBackingStore store(String table, String namespace) {
        return store(table, namespace, db.server().user(), "10000");
    }

    private PostgresOffsetBackingStore store(String table, String namespace, String user, String retryTimeoutMs) {
        Map<String, Object> props = new HashMap<>();
        props.put(PostgresOffsetStoreConfig.URL, db.jdbcUrl());
        props.put(PostgresOffsetStoreConfig.USER, user);
        props.put(PostgresOffsetStoreConfig.PASSWORD, db.server().password());
        props.put(PostgresOffsetStoreConfig.TABLE, table);
        props.put(PostgresOffsetStoreConfig.NAMESPACE, namespace);
        props.put(PostgresOffsetStoreConfig.RETRY_TIMEOUT_MS, retryTimeoutMs);
        PostgresOffsetBackingStore store = new PostgresOffsetBackingStore();
        store.configure(props);
        store.start();
        return store;
    }

    private static ByteBuffer buf(String s) {
        return ByteBuffer.wrap(s.getBytes(UTF_8));
    }

    private static String str(ByteBuffer b) {
        return b == null ? null : UTF_8.decode(b.duplicate()).toString();
    }

    private static String read(PostgresOffsetBackingStore store, String key) throws Exception {
        return str(store.get(List.of(buf(key))).get(10, TimeUnit.SECONDS).get(buf(key)));
    }

    @Test
    void roundTripAndRestartLoadsWhatWasWritten() throws Exception {
        PostgresOffsetBackingStore store = store("offsets_roundtrip", "relay-a");
        AtomicReference<Throwable> callbackError = new AtomicReference<>(new IllegalStateException("callback not called"));
        store.set(Map.of(buf("[\"relay-a\",{\"server\":\"s\"}]"), buf("{\"lsn\":1}")), (err, v) -> callbackError.set(err)).get(10, TimeUnit.SECONDS);
        assertThat(callbackError.get()).isNull();
        store.set(Map.of(buf("[\"relay-a\",{\"server\":\"s\"}]"), buf("{\"lsn\":2}")), null).get(10, TimeUnit.SECONDS);
        assertThat(read(store, "[\"relay-a\",{\"server\":\"s\"}]")).isEqualTo("{\"lsn\":2}");
        assertThat(store.connectorPartitions("relay-a")).containsExactly(Map.of("server", "s"));
        store.stop();

        PostgresOffsetBackingStore restarted = store("offsets_roundtrip", "relay-a");
        try {
            assertThat(read(restarted, "[\"relay-a\",{\"server\":\"s\"}]")).isEqualTo("{\"lsn\":2}");
            assertThat(read(restarted, "unknown")).isNull();
        }
        finally {
            restarted.stop();
        }
        try (Connection c = db.connect(); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT count(*) FROM offsets_roundtrip")) {
            rs.next();
            assertThat(rs.getInt(1)).as("one row per key, updated in place").isEqualTo(1);
        }
    }

    @Test
    void namespacesSharingATableDoNotClobberEachOther() throws Exception {
        db.execute("CREATE SCHEMA IF NOT EXISTS relay");
        PostgresOffsetBackingStore a = store("relay.shared_offsets", "relay-a");
        PostgresOffsetBackingStore b = store("relay.shared_offsets", "relay-b");
        try {
            a.set(Map.of(buf("k"), buf("a1")), null).get(10, TimeUnit.SECONDS);
            b.set(Map.of(buf("k"), buf("b1")), null).get(10, TimeUnit.SECONDS);
            a.set(Map.of(buf("k"), buf("a2")), null).get(10, TimeUnit.SECONDS);
            b.set(Map.of(buf("other"), buf("b2")), null).get(10, TimeUnit.SECONDS);
        }
        finally {
            a.stop();
            b.stop();
        }
        PostgresOffsetBackingStore a2 = store("relay.shared_offsets", "relay-a");
        PostgresOffsetBackingStore b2 = store("relay.shared_offsets", "relay-b");
        try {
            assertThat(read(a2, "k")).isEqualTo("a2");
            assertThat(read(a2, "other")).isNull();
            assertThat(read(b2, "k")).isEqualTo("b1");
            assertThat(read(b2, "other")).isEqualTo("b2");
        }
        finally {
            a2.stop();
            b2.stop();
        }
    }

    @Test
    void nullValueDeletesTheKey() throws Exception {
        PostgresOffsetBackingStore store = store("offsets_delete", "ns");
        try {
            store.set(Map.of(buf("k"), buf("v")), null).get(10, TimeUnit.SECONDS);
            Map<ByteBuffer, ByteBuffer> tombstone = new HashMap<>();
            tombstone.put(buf("k"), null);
            store.set(tombstone, null).get(10, TimeUnit.SECONDS);
            assertThat(read(store, "k")).isNull();
        }
        finally {
            store.stop();
        }
        try (Connection c = db.connect(); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT count(*) FROM offsets_delete")) {
            rs.next();
            assertThat(rs.getInt(1)).isZero();
        }
    }

    @Test
    void writeWaitsOutAPostgresRestart() throws Exception {
        PostgresOffsetBackingStore store = store("offsets_restart", "ns", db.server().user(), "60000");
        try {
            store.set(Map.of(buf("k"), buf("before")), null).get(10, TimeUnit.SECONDS);
            ServerControl.stopPostgres();
            Future<Void> during;
            try {
                during = store.set(Map.of(buf("k"), buf("after")), null);
                Thread.sleep(2_000);
                assertThat(during).as("cannot commit while the server is down").isNotDone();
            }
            finally {
                ServerControl.startPostgres();
            }
            during.get(60, TimeUnit.SECONDS);
        }
        finally {
            store.stop();
        }
        PostgresOffsetBackingStore restarted = store("offsets_restart", "ns");
        try {
            assertThat(read(restarted, "k")).isEqualTo("after");
        }
        finally {
            restarted.stop();
        }
    }

    @Test
    void roleWithoutInsertFailsAtOnceWithWhatToGrant() throws Exception {
        db.execute("DROP ROLE IF EXISTS offsets_reader",
                "CREATE ROLE offsets_reader LOGIN",
                "CREATE TABLE offsets_locked (namespace text NOT NULL, offset_key bytea NOT NULL, offset_value bytea, "
                        + "updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (namespace, offset_key))",
                "GRANT SELECT ON offsets_locked TO offsets_reader");
        PostgresOffsetBackingStore store = store("offsets_locked", "ns", "offsets_reader", "60000");
        try {
            long start = System.nanoTime();
            AtomicReference<Throwable> callbackError = new AtomicReference<>();
            Future<Void> write = store.set(Map.of(buf("k"), buf("v")), (err, v) -> callbackError.set(err));
            assertThatThrownBy(() -> write.get(30, TimeUnit.SECONDS))
                    .isInstanceOf(ExecutionException.class)
                    .cause()
                    .isInstanceOf(ConnectException.class)
                    .hasMessageContaining("offsets_locked")
                    .hasMessageContaining("GRANT SELECT, INSERT, UPDATE, DELETE ON offsets_locked TO offsets_reader");
            assertThat(Duration.ofNanos(System.nanoTime() - start)).as("a permanent failure is not retried").isLessThan(Duration.ofSeconds(5));
            assertThat(callbackError.get()).isInstanceOf(ConnectException.class);
        }
        finally {
            store.stop();
            db.execute("DROP TABLE offsets_locked", "DROP ROLE offsets_reader");
        }
    }

    @Test
    void engineResumesAfterRestartWithoutRedelivery() throws Exception {
        db.execute("CREATE TABLE outbox (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), aggregatetype text, aggregateid text, "
                + "type text, payload jsonb)");
        String slot = db.slotName();
        var props = TestEngine.outboxProperties(db, slot, "public.outbox");
        props.setProperty("offset.storage", PostgresOffsetBackingStore.class.getName());
        props.setProperty(PostgresOffsetStoreConfig.URL, db.jdbcUrl());
        props.setProperty(PostgresOffsetStoreConfig.USER, db.server().user());
        props.setProperty(PostgresOffsetStoreConfig.PASSWORD, db.server().password());

        try (TestEngine first = TestEngine.start(db, props)) {
            insert(1, 5);
            assertThat(ids(first.awaitRecords(5, Duration.ofSeconds(60)))).containsExactly("1", "2", "3", "4", "5");
        }
        insert(6, 10);
        try (TestEngine second = TestEngine.start(db, props)) {
            List<SourceRecord> records = second.awaitRecords(5, Duration.ofSeconds(60));
            Thread.sleep(1_000);
            assertThat(ids(second.records())).as("only what the first run had not committed").containsExactly("6", "7", "8", "9", "10");
            assertThat(records).hasSize(5);
        }
        try (Connection c = db.connect(); Statement s = c.createStatement();
                ResultSet rs = s.executeQuery("SELECT namespace FROM " + PostgresOffsetStoreConfig.DEFAULT_TABLE)) {
            assertThat(rs.next()).isTrue();
            assertThat(rs.getString(1)).isEqualTo("engine-" + slot);
        }
    }

    private void insert(int from, int to) throws Exception {
        for (int i = from; i <= to; i++) {
            db.execute("INSERT INTO outbox (aggregatetype, aggregateid, type, payload) VALUES ('order', '" + i + "', 'created', '{}')");
        }
    }

    private static List<String> ids(List<SourceRecord> records) {
        return records.stream().map(r -> ((Struct) r.value()).getStruct("after").getString("aggregateid")).toList();
    }
}
