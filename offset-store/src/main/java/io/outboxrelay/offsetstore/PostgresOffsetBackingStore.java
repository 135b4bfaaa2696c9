package io.outboxrelay.offsetstore;

import java.nio.ByteBuffer;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.runtime.WorkerConfig;
import org.apache.kafka.connect.storage.OffsetBackingStore;
import org.apache.kafka.connect.storage.OffsetUtils;
import org.apache.kafka.connect.util.Callback;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A Kafka Connect {@link OffsetBackingStore} that keeps source offsets in a PostgreSQL table, one row
 * per (namespace, offset key). Load it in Debezium's embedded engine or Debezium Server with
 * {@code offset.storage=io.outboxrelay.offsetstore.PostgresOffsetBackingStore}; settings are under
 * {@code offset.storage.postgres.*} ({@link PostgresOffsetStoreConfig}).
 *
 * <p>The future of {@link #set} completes only after the transaction committed. Transient failures
 * are retried with back-off on a fresh connection within {@code retry.timeout.ms}; permanent ones fail
 * at once, logged at ERROR with what to grant or fix. All SQL runs on one thread, so flushes are
 * applied in the order they were requested.
 */
public class PostgresOffsetBackingStore implements OffsetBackingStore {

    private static final Logger LOG = LoggerFactory.getLogger(PostgresOffsetBackingStore.class);

    private final Map<ByteBuffer, ByteBuffer> data = new ConcurrentHashMap<>();
    private PostgresOffsetStoreConfig config;
    private OffsetTable table;
    private ExecutorService executor;

    @Override
    public void configure(WorkerConfig workerConfig) {
        this.config = PostgresOffsetStoreConfig.from(workerConfig.originals());
    }

    /** For use outside a Connect worker (tests, tools). */
    public void configure(Map<String, ?> properties) {
        this.config = PostgresOffsetStoreConfig.from(properties);
    }

    @Override
    public synchronized void start() {
        if (config == null) {
            throw new IllegalStateException("configure() must be called before start()");
        }
        table = new OffsetTable(config);
        executor = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "offset-store-" + config.namespace());
            t.setDaemon(true);
            return t;
        });
        try {
            withRetries("create", () -> {
                table.createIfMissing();
                return null;
            });
            data.putAll(withRetries("read", table::load));
        }
        catch (ConnectException e) {
            stop();
            throw e;
        }
        LOG.info("Offset store started: table {}, namespace '{}', {} stored offset(s)", config.table(), config.namespace(), data.size());
    }

    @Override
    public synchronized void stop() {
        if (executor != null) {
            executor.shutdown();
            try {
                // A flush under way finishes (or exhausts its retries) before the connection closes.
                if (!executor.awaitTermination(config.retryTimeout().toMillis() + 5_000, TimeUnit.MILLISECONDS)) {
                    LOG.warn("Offset store: a write to {} was still running at stop", config.table());
                    executor.shutdownNow();
                }
            }
            catch (InterruptedException e) {
                executor.shutdownNow();
                Thread.currentThread().interrupt();
            }
            executor = null;
        }
        if (table != null) {
            table.close();
            table = null;
        }
    }

    @Override
    public Future<Map<ByteBuffer, ByteBuffer>> get(Collection<ByteBuffer> keys) {
        // Reads go through the writer thread so that they see every flush requested before them.
        return executor.submit(() -> {
            Map<ByteBuffer, ByteBuffer> result = new HashMap<>();
            for (ByteBuffer key : keys) {
                result.put(key, data.get(key));
            }
            return result;
        });
    }

    @Override
    public Future<Void> set(Map<ByteBuffer, ByteBuffer> values, Callback<Void> callback) {
        Map<ByteBuffer, ByteBuffer> copy = new HashMap<>(values);
        return executor.submit(() -> {
            try {
                withRetries("write", () -> {
                    table.write(copy);
                    return null;
                });
            }
            catch (RuntimeException e) {
                if (callback != null) {
                    callback.onCompletion(e, null);
                }
                throw e;
            }
            copy.forEach((k, v) -> {
                if (v == null) {
                    data.remove(k);
                }
                else {
                    data.put(k, v);
                }
            });
            if (callback != null) {
                callback.onCompletion(null, null);
            }
            return null;
        });
    }

    @Override
    public Set<Map<String, Object>> connectorPartitions(String connectorName) {
        // Offset keys are written by the engine's JsonConverter (schemas off); Kafka's own helper
        // decodes them the way its file and memory stores do.
        JsonConverter converter = new JsonConverter();
        converter.configure(Map.of("schemas.enable", "false"), true);
        Map<String, Set<Map<String, Object>>> partitions = new HashMap<>();
        data.forEach((k, v) -> OffsetUtils.processPartitionKey(OffsetTable.bytes(k), v == null ? null : OffsetTable.bytes(v), converter, partitions));
        return partitions.getOrDefault(connectorName, Set.of());
    }

    /** The table and namespace this store writes, for status reports. */
    public PostgresOffsetStoreConfig config() {
        return config;
    }

    private interface SqlAction<T> {
        T run() throws SQLException;
    }

    private <T> T withRetries(String action, SqlAction<T> sql) {
        long deadline = System.nanoTime() + config.retryTimeout().toNanos();
        Duration pause = config.backoffInitial();
        for (int attempt = 1;; attempt++) {
            try {
                T result = sql.run();
                if (attempt > 1) {
                    LOG.info("Offset store: {} of {} succeeded after {} attempts", action, config.table(), attempt);
                }
                return result;
            }
            catch (SQLException e) {
                String message = SqlFailure.describe(e, config, action);
                if (!SqlFailure.isTransient(e)) {
                    LOG.error(message);
                    throw new ConnectException(message, e);
                }
                table.reset();
                if (System.nanoTime() + pause.toNanos() > deadline) {
                    String gaveUp = message + " — still failing after " + attempt + " attempts over " + config.retryTimeout().toMillis()
                            + " ms (" + PostgresOffsetStoreConfig.RETRY_TIMEOUT_MS + ")";
                    LOG.error(gaveUp);
                    throw new ConnectException(gaveUp, e);
                }
                LOG.warn("{} — retrying in {} ms", message, pause.toMillis());
                try {
                    Thread.sleep(pause.toMillis());
                }
                catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new ConnectException("Interrupted while retrying to " + action + " offsets", ie);
                }
                pause = pause.multipliedBy(2).compareTo(config.backoffMax()) > 0 ? config.backoffMax() : pause.multipliedBy(2);
            }
        }
    }
}
