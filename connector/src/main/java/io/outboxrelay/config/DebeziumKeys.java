package io.outboxrelay.config;

import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import org.postgresql.PGProperty;

import io.debezium.config.Field;
import io.debezium.connector.postgresql.PostgresConnectorConfig;
import io.debezium.embedded.async.AsyncEngineConfig;
import io.outboxrelay.offsetstore.PostgresOffsetStoreConfig;

/**
 * The keys Debezium itself knows under {@code debezium.source.*}, taken from its own field
 * definitions (the PostgreSQL connector's and the embedded engine's {@code ALL_FIELDS}), plus the
 * offset store's and the JDBC driver's: so a typo is named with the key that was probably meant,
 * instead of being passed on and silently ignored.
 */
final class DebeziumKeys {

    /** Families of keys whose names the user makes up (a converter's, a signal channel's) or that go to another component as they are. */
    private static final List<String> OPEN_PREFIXES = List.of("transforms.", "predicates.", "offset.storage.", "signal.", "notification.",
            "internal.", "errors.", "driver.", "key.converter.", "value.converter.", "header.converter.");

    private final Set<String> known = new TreeSet<>();
    private final Set<String> driverProperties = new TreeSet<>();

    DebeziumKeys() {
        for (Field f : PostgresConnectorConfig.ALL_FIELDS) {
            known.add(f.name());
        }
        for (Field f : AsyncEngineConfig.ALL_FIELDS) {
            known.add(f.name());
        }
        known.addAll(PostgresOffsetStoreConfig.CONFIG_DEF.names());
        for (PGProperty p : PGProperty.values()) {
            driverProperties.add(p.getName());
        }
    }

    /**
     * Why {@code key} (without the {@code debezium.source.} prefix) is unknown, with the closest
     * known key; null when it is known. {@code converters} names the custom converters, whose own
     * keys ({@code <name>.*}) are theirs to define.
     */
    String unknown(String key, Collection<String> converters) {
        if (known.contains(key) || OPEN_PREFIXES.stream().anyMatch(key::startsWith) || converters.stream().anyMatch(c -> key.startsWith(c + "."))) {
            return null;
        }
        // Debezium hands database.* keys it does not know to the JDBC driver.
        if (key.startsWith("database.") && driverProperties.contains(key.substring("database.".length()))) {
            return null;
        }
        String near = closest(key);
        return "is not a key of Debezium's PostgreSQL connector or engine" + (near == null ? "" : "; did you mean " + near + "?")
                + " It is passed on, and most likely ignored";
    }

    /** The known key nearest to {@code key}, or null. */
    String closest(String key) {
        return Suggestions.closest(key, known);
    }

    /** A comma-separated Debezium list value as its trimmed, non-empty items; empty for null. */
    static List<String> list(String value) {
        return value == null ? List.of() : Arrays.stream(value.split(",")).map(String::trim).filter(s -> !s.isEmpty()).toList();
    }
}
