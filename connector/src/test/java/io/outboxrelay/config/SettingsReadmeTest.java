package io.outboxrelay.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;

/** The README's settings tables are the declarations' own output: a key added, renamed or re-documented in one place only fails here. */
class SettingsReadmeTest {

    @Test
    void theReadmeTablesAreWhatTheDeclarationsPrint() throws Exception {
        String readme = Files.readString(readme());
        assertThat(block(readme, "relay")).as("README's relay.* table; regenerate with `outbox-relay settings`").isEqualTo(SettingsDoc.relay());
        assertThat(block(readme, "sink")).as("README's debezium.sink.rabbitmq.* table; regenerate with `outbox-relay settings`").isEqualTo(SettingsDoc.sink());
        assertThat(block(readme, "stream")).as("README's debezium.sink.rabbitmqstream.* table; regenerate with `outbox-relay settings`")
                .isEqualTo(SettingsDoc.stream());
    }

    @Test
    void everyDeclaredKeyHasAMeaningAndTheLoaderKnowsItsNamespace() {
        for (var def : new org.apache.kafka.common.config.ConfigDef[] { Settings.RELAY, Settings.SINK, Settings.STREAM }) {
            def.configKeys().values().forEach(k -> assertThat(k.documentation).as(k.name).isNotBlank());
        }
        assertThat(Settings.RELAY.names()).allMatch(n -> n.startsWith(Settings.RELAY_PREFIX));
        assertThat(Settings.SINK.names()).allMatch(n -> n.startsWith(Settings.SINK_PREFIX));
        assertThat(Settings.STREAM.names()).allMatch(n -> n.startsWith(Settings.STREAM_PREFIX));
    }

    private static String block(String readme, String tag) {
        String open = "<!-- settings:" + tag;
        int start = readme.indexOf(open);
        assertThat(start).as("README has a " + open + " block").isNotNegative();
        start = readme.indexOf('\n', start) + 1;
        int end = readme.indexOf("<!-- /settings:" + tag + " -->", start);
        return readme.substring(start, end);
    }

    private static Path readme() {
        for (Path p = Path.of(System.getProperty("user.dir")).toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("README.md")) && Files.isDirectory(p.resolve("connector"))) {
                return p.resolve("README.md");
            }
        }
        throw new IllegalStateException("README.md not found above " + System.getProperty("user.dir"));
    }
}
