package io.outboxrelay.offsetstore;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import org.apache.kafka.common.config.ConfigException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PostgresOffsetStoreConfigTest {

    private static Map<String, Object> minimal() {
        Map<String, Object> m = new HashMap<>();
        m.put("name", "my-relay");
        m.put(PostgresOffsetStoreConfig.URL, "jdbc:postgresql://db:5432/app");
        return m;
    }

    @Test
    void defaultsTableAndNamespaceFromEngineName() {
        PostgresOffsetStoreConfig config = PostgresOffsetStoreConfig.from(minimal());
        assertThat(config.table()).isEqualTo("outbox_relay_offsets");
        assertThat(config.namespace()).isEqualTo("my-relay");
        assertThat(config.retryTimeout().toMillis()).isEqualTo(30_000);
    }

    @Test
    void acceptsSchemaQualifiedTable() {
        Map<String, Object> m = minimal();
        m.put(PostgresOffsetStoreConfig.TABLE, "relay.offsets");
        assertThat(PostgresOffsetStoreConfig.from(m).table()).isEqualTo("relay.offsets");
    }

    @Test
    void refusesTableNamesThatAreNotPlainIdentifiers() {
        Map<String, Object> m = minimal();
        m.put(PostgresOffsetStoreConfig.TABLE, "offsets; DROP TABLE x");
        assertThatThrownBy(() -> PostgresOffsetStoreConfig.from(m))
                .isInstanceOf(ConfigException.class)
                .hasMessageContaining(PostgresOffsetStoreConfig.TABLE);
    }

    @Test
    void missingUrlNamesTheKey() {
        Map<String, Object> m = minimal();
        m.remove(PostgresOffsetStoreConfig.URL);
        assertThatThrownBy(() -> PostgresOffsetStoreConfig.from(m)).hasMessageContaining(PostgresOffsetStoreConfig.URL);
    }

    @Test
    void refusesNonPostgresUrl() {
        Map<String, Object> m = minimal();
        m.put(PostgresOffsetStoreConfig.URL, "jdbc:mysql://db/app");
        assertThatThrownBy(() -> PostgresOffsetStoreConfig.from(m)).hasMessageContaining(PostgresOffsetStoreConfig.URL);
    }

    @Test
    void namespaceIsRequiredWithoutEngineName() {
        Map<String, Object> m = minimal();
        m.remove("name");
        assertThatThrownBy(() -> PostgresOffsetStoreConfig.from(m)).hasMessageContaining(PostgresOffsetStoreConfig.NAMESPACE);
    }

    @Test
    void passwordFileWinsAndLosesItsTrailingNewline(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("pw");
        Files.writeString(file, "s3cret\n");
        Map<String, Object> m = minimal();
        m.put(PostgresOffsetStoreConfig.PASSWORD, "other");
        m.put(PostgresOffsetStoreConfig.PASSWORD_FILE, file.toString());
        PostgresOffsetStoreConfig config = PostgresOffsetStoreConfig.from(m);
        assertThat(config.password()).isEqualTo("s3cret");
        // Read at every connection: a rotated file is used by the next one.
        Files.writeString(file, "rotated\n");
        assertThat(config.password()).isEqualTo("rotated");
    }

    @Test
    void unreadablePasswordFileNamesTheKey(@TempDir Path dir) {
        Map<String, Object> m = minimal();
        m.put(PostgresOffsetStoreConfig.PASSWORD_FILE, dir.resolve("missing").toString());
        assertThatThrownBy(() -> PostgresOffsetStoreConfig.from(m)).hasMessageContaining(PostgresOffsetStoreConfig.PASSWORD_FILE);
    }
}
