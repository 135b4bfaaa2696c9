package io.outboxrelay.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.Test;

/**
 * docs/configuration.md is the declarations' own output: a key added, renamed, retyped or
 * re-documented in one place only fails here. The three tables of the relay's own keys must equal
 * what {@link SettingsDoc} prints ({@code outbox-relay settings}); the table of Debezium keys the
 * relay sets differently must name every key {@link EngineDefaults} sets, with the value it sets.
 * When the page is stale, the page as it should be is written to {@code target/configuration.md}.
 */
class ConfigurationPageTest {

    private static final Path PAGE = ProjectDocs.root().resolve("docs/configuration.md");

    @Test
    void theSettingsTablesAreWhatTheDeclarationsPrint() throws Exception {
        String page = Files.readString(PAGE);
        String expected = page;
        for (String[] table : new String[][] { { "relay", SettingsDoc.relay() }, { "sink", SettingsDoc.sink() }, { "stream", SettingsDoc.stream() } }) {
            expected = withBlock(expected, table[0], table[1]);
        }
        if (!expected.equals(page)) {
            Path fresh = Path.of("target", "configuration.md");
            Files.createDirectories(fresh.getParent());
            Files.writeString(fresh, expected);
            assertThat(page).as("docs/configuration.md is stale: its settings tables differ from the declarations in config/Settings. The page as it "
                    + "should be is in connector/%s (or paste the tables `bin/outbox-relay settings` prints)", fresh).isEqualTo(expected);
        }
    }

    @Test
    void theDebeziumTableNamesEveryKeyTheRelaySetsWithItsValue() throws Exception {
        String page = Files.readString(PAGE);
        int start = page.indexOf("\n## `debezium.source.*`");
        assertThat(start).as("docs/configuration.md has the section ## `debezium.source.*`").isNotNegative();
        String section = page.substring(start, page.indexOf("\n## ", start + 1));
        List<String> rows = section.lines().filter(l -> l.startsWith("| `")).toList();
        Properties defaults = EngineDefaults.forRelay("orders-relay");
        SoftAssertions softly = new SoftAssertions();
        for (String key : defaults.stringPropertyNames()) {
            String row = rows.stream().filter(r -> codeSpans(cell(r, 0)).contains(key)).findFirst().orElse(null);
            softly.assertThat(row).as("a row of docs/configuration.md's debezium.source.* table for %s, which EngineDefaults sets to %s", key,
                    defaults.getProperty(key)).isNotNull();
            if (row == null || cell(row, 1).contains("relay.name")) {
                continue; // derived from the relay's name: the row says how
            }
            List<String> values = codeSpans(cell(row, 1));
            softly.assertThat(values).as("the relay's default of %s in docs/configuration.md", key).isNotEmpty();
            if (!values.isEmpty()) {
                softly.assertThat(values.get(0)).as("the relay's default of %s in docs/configuration.md (EngineDefaults)", key)
                        .isEqualTo(defaults.getProperty(key));
            }
        }
        softly.assertAll();
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

    /** {@code page} with the generated block {@code tag} replaced by {@code table}. */
    private static String withBlock(String page, String tag, String table) {
        String open = "<!-- settings:" + tag;
        int start = page.indexOf(open);
        assertThat(start).as("docs/configuration.md has a " + open + " block").isNotNegative();
        start = page.indexOf('\n', start) + 1;
        int end = page.indexOf("<!-- /settings:" + tag + " -->", start);
        assertThat(end).as("docs/configuration.md closes its " + open + " block").isNotNegative();
        return page.substring(0, start) + table + page.substring(end);
    }

    /** The {@code index}-th cell of a Markdown table row (cells hold no {@code |} of their own here). */
    private static String cell(String row, int index) {
        String[] cells = row.split("\\|");
        return index + 1 < cells.length ? cells[index + 1].strip() : "";
    }

    private static List<String> codeSpans(String text) {
        List<String> spans = new ArrayList<>();
        Matcher m = Pattern.compile("`([^`]+)`").matcher(text);
        while (m.find()) {
            spans.add(m.group(1));
        }
        return spans;
    }
}
