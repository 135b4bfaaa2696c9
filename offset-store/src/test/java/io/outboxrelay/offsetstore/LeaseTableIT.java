package io.outboxrelay.offsetstore;

import static java.nio.charset.StandardCharsets.UTF_8;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.ByteBuffer;
import java.sql.Connection;
import java.sql.Statement;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.connect.errors.ConnectException;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

import io.outboxrelay.testing.TestDatabase;

/** The lease's rules and the fence on offset writes, against a real PostgreSQL. */
class LeaseTableIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();

    private static final LeaseTable LEASES = new LeaseTable(LeaseTable.DEFAULT_TABLE);
    private static final Duration TTL = Duration.ofSeconds(20);
    private static final Duration SILENT = Duration.ofSeconds(3);

    @BeforeAll
    static void tables() throws Exception {
        try (Connection c = db.connect()) {
            LEASES.createIfMissing(c);
        }
    }

    @Test
    void aHeldLeaseIsNotTakenUntilItLapsesOrItsHolderFallsSilentWithoutStreaming() throws Exception {
        try (Connection c = db.connect()) {
            assertThat(LEASES.acquire(c, "rules", "a", "host-a", 1, TTL, SILENT, true)).contains(1L);
            assertThat(LEASES.acquire(c, "rules", "b", "host-b", 2, TTL, SILENT, true)).as("held and renewed").isEmpty();
            execute(c, "UPDATE outbox_relay_leases SET renewed_at = now() - interval '5 seconds' WHERE name = 'rules'");
            assertThat(LEASES.acquire(c, "rules", "b", "host-b", 2, TTL, SILENT, false)).as("silent, but its slot is still read: restarting, not gone")
                    .isEmpty();
            assertThat(LEASES.renew(c, "rules", "a", 1, TTL)).isTrue();
            assertThat(LEASES.acquire(c, "rules", "a", "host-a", 1, TTL, SILENT, true)).as("its holder may take it again, fencing itself")
                    .contains(2L);

            // Renewals stopped and nothing streams from the slot: a killed leader, taken over before the lease runs out.
            execute(c, "UPDATE outbox_relay_leases SET renewed_at = now() - interval '5 seconds' WHERE name = 'rules'");
            assertThat(LEASES.acquire(c, "rules", "b", "host-b", 2, TTL, SILENT, true)).contains(3L);
            assertThat(LEASES.renew(c, "rules", "a", 2, TTL)).as("the old holder's renewal fails").isFalse();
            assertThat(LEASES.read(c, "rules")).hasValueSatisfying(l -> assertThat(l.holder()).isEqualTo("b"));

            LEASES.release(c, "rules", "b", 3);
            assertThat(LEASES.acquire(c, "rules", "c", "host-c", 3, TTL, SILENT, true)).as("a released lease is free at once").contains(4L);

            LEASES.heartbeat(c, "rules", "b", "host-b", 2, "standby");
            LEASES.heartbeat(c, "rules", "c", "host-c", 3, "leader");
            assertThat(LEASES.members(c, "rules", TTL)).extracting(LeaseTable.Member::member, LeaseTable.Member::role)
                    .containsExactly(org.assertj.core.groups.Tuple.tuple("b", "standby"), org.assertj.core.groups.Tuple.tuple("c", "leader"));
            LEASES.leave(c, "rules", "b", TTL);
            assertThat(LEASES.members(c, "rules", TTL)).extracting(LeaseTable.Member::member).containsExactly("c");
        }
    }

    @Test
    void anOffsetWriteWithAnEpochNoLongerCurrentIsRefusedAndStoresNothing() throws Exception {
        try (Connection c = db.connect()) {
            assertThat(LEASES.acquire(c, "fenced", "a", "host-a", 1, TTL, SILENT, true)).contains(1L);
        }
        PostgresOffsetBackingStore old = store(1);
        try {
            old.set(Map.of(buf("k"), buf("from-epoch-1")), null).get(10, TimeUnit.SECONDS);
            try (Connection c = db.connect()) {
                execute(c, "UPDATE outbox_relay_leases SET expires_at = now() - interval '1 second' WHERE name = 'fenced'");
                assertThat(LEASES.acquire(c, "fenced", "b", "host-b", 2, TTL, SILENT, true)).contains(2L);
            }
            long start = System.nanoTime();
            assertThatThrownBy(() -> old.set(Map.of(buf("k"), buf("late-from-epoch-1")), null).get(10, TimeUnit.SECONDS))
                    .isInstanceOf(ExecutionException.class).cause().isInstanceOf(ConnectException.class)
                    .hasMessageContaining("fenced: relay 'fenced' is led by epoch 2 (host-b, pid 2); this relay held epoch 1")
                    .hasMessageContaining("another relay took the lease over");
            assertThat(Duration.ofNanos(System.nanoTime() - start)).as("not retried").isLessThan(Duration.ofSeconds(5));
        }
        finally {
            old.stop();
        }
        PostgresOffsetBackingStore current = store(2);
        try {
            assertThat(str(current.get(List.of(buf("k"))).get(10, TimeUnit.SECONDS).get(buf("k")))).as("the fenced write stored nothing")
                    .isEqualTo("from-epoch-1");
            current.set(Map.of(buf("k"), buf("from-epoch-2")), null).get(10, TimeUnit.SECONDS);
        }
        finally {
            current.stop();
        }
    }

    private static PostgresOffsetBackingStore store(long epoch) {
        Map<String, Object> props = new HashMap<>();
        props.put(PostgresOffsetStoreConfig.URL, db.jdbcUrl());
        props.put(PostgresOffsetStoreConfig.USER, db.server().user());
        props.put(PostgresOffsetStoreConfig.PASSWORD, db.server().password());
        props.put(PostgresOffsetStoreConfig.NAMESPACE, "fenced");
        props.put(PostgresOffsetStoreConfig.FENCING_TABLE, LeaseTable.DEFAULT_TABLE);
        props.put(PostgresOffsetStoreConfig.FENCING_EPOCH, Long.toString(epoch));
        PostgresOffsetBackingStore store = new PostgresOffsetBackingStore();
        store.configure(props);
        store.start();
        return store;
    }

    private static void execute(Connection c, String sql) throws Exception {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        }
    }

    private static ByteBuffer buf(String s) {
        return ByteBuffer.wrap(s.getBytes(UTF_8));
    }

    private static String str(ByteBuffer b) {
        return b == null ? null : UTF_8.decode(b.duplicate()).toString();
    }
}
