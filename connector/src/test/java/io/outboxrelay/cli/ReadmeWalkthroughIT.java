package io.outboxrelay.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.ResultSet;
import java.sql.Statement;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.assertj.core.api.SoftAssertions;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Delivery;

import io.outboxrelay.testing.Progress;
import io.outboxrelay.testing.QueueRecorder;
import io.outboxrelay.testing.RelayProcess;
import io.outboxrelay.testing.TestBroker;
import io.outboxrelay.testing.TestDatabase;

/**
 * The README's "From nothing to your own outbox", step by step as a user follows it, read from
 * README.md at test time: the properties block of "A minimal configuration" with only the keys that
 * point at servers and credentials replaced, {@code deploy/sql/outbox.sql}, {@code tail --declare
 * --queue} with the {@code --binding 'order.#'} the README suggests, {@code check}, {@code run} and
 * the README's own INSERT, then an independent consumer on that queue. It fails when the README and
 * the relay disagree about what a consumer sees by default (issue 45).
 */
class ReadmeWalkthroughIT {

    @RegisterExtension
    static final TestDatabase db = new TestDatabase();
    @RegisterExtension
    static final TestBroker broker = new TestBroker();

    private static final Duration STALL = Duration.ofSeconds(30);
    private static final Path ROOT = projectRoot();

    /** What the steps must still say; an edit of the README that changes them fails here first, naming what changed. */
    private static final String TAIL_DECLARE = "bin/outbox-relay tail --config relay.properties --declare --queue shop.events.all --timeout 1";
    private static final String CHECK = "bin/outbox-relay check --config relay.properties";
    private static final String RUN = "bin/outbox-relay run --config relay.properties";

    @TempDir
    Path dir;

    /** The broker-wide names this test declares (through the relay's own tail), deleted after it: TestBroker deletes only what it declared. */
    private String exchange;
    private String queue;

    @Test
    void aConsumerOfTheReadmesQueueGetsTheReadmesEventAsTheReadmeSays() throws Exception {
        String readme = Files.readString(ROOT.resolve("README.md"));
        String walkthrough = section(readme, "## From nothing to your own outbox");
        String minimal = section(readme, "## A minimal configuration");

        // Step 2: the properties block, verbatim, with only what points at the test's servers replaced.
        Map<String, String> readmeConfig = propertiesBlock(minimal);
        Map<String, String> config = pointedAtTheTestServers(readmeConfig);
        exchange = readmeConfig.get("debezium.sink.rabbitmq.exchange");
        assertThat(exchange).as("the README's minimal configuration names an exchange").isNotBlank();

        // Step 1: the outbox table, from the file the README names, in the database the configuration names.
        Matcher psql = Pattern.compile("`psql -d (\\S+) -f (\\S+)`").matcher(walkthrough);
        assertThat(psql.find()).as("step 1 runs `psql -d <db> -f <file>`:\n" + walkthrough).isTrue();
        assertThat(psql.group(1)).as("step 1's database is the configuration's debezium.source.database.dbname")
                .isEqualTo(readmeConfig.get("debezium.source.database.dbname"));
        db.execute(Files.readString(ROOT.resolve(psql.group(2))));

        // Step 3: the exchange and the queue, declared by the relay itself, with the narrower binding the README suggests.
        Matcher tail = Pattern.compile("`(bin/outbox-relay tail --config relay\\.properties [^`]*--queue [^`]*)`").matcher(walkthrough);
        assertThat(tail.find()).as("step 3 declares the queue with `bin/outbox-relay tail --config relay.properties --declare --queue ...`:\n"
                + walkthrough).isTrue();
        assertThat(tail.group(1)).isEqualTo(TAIL_DECLARE);
        Matcher suggested = Pattern.compile("`--binding '([^']+)'`").matcher(walkthrough);
        assertThat(suggested.find()).as("step 3 suggests `--binding '...'`:\n" + walkthrough).isTrue();
        assertThat(suggested.group(1)).isEqualTo("order.#");
        List<String> tailArgs = new ArrayList<>(Arrays.asList(tail.group(1).split(" ")));
        // RelayProcess.command gives the command and --config <the test's file> itself: the rest is the README's, as the shell passes it.
        assertThat(tailArgs.subList(0, 4)).containsExactly("bin/outbox-relay", "tail", "--config", "relay.properties");
        tailArgs = new ArrayList<>(tailArgs.subList(4, tailArgs.size()));
        queue = tailArgs.get(tailArgs.indexOf("--queue") + 1);
        // The README's names are broker-wide: drop what a run killed before its cleanup left, so that no old binding ('#') or message remains.
        deleteQueueAndExchange();
        tailArgs.addAll(List.of("--binding", suggested.group(1)));
        RelayProcess declare = RelayProcess.command(dir, config, "tail", tailArgs.toArray(String[]::new));
        assertThat(declare.await(Duration.ofSeconds(60))).as("exit code of `%s --binding %s`:\n%s", TAIL_DECLARE, suggested.group(1), declare.log())
                .isZero();
        assertThat(declare.log()).contains("listening on exchange '" + exchange + "' (queue " + queue + ", binding 'order.#')");

        // Step 4: check, every line [ OK ].
        assertThat(walkthrough).contains("`" + CHECK + "`");
        RelayProcess check = RelayProcess.command(dir, config, "check");
        int checkExit = check.await(Duration.ofSeconds(60));
        String checkOut = check.log();
        assertThat(checkOut).as("what `%s` printed", CHECK).contains("[ OK ]").doesNotContain("[FAIL]");
        assertThat(checkExit).as("exit code of `%s`:\n%s", CHECK, checkOut).isZero();

        // Step 5: run, and the README's INSERT, as the application (or psql) runs it.
        assertThat(walkthrough).contains("`" + RUN + "`");
        Matcher insert = Pattern.compile("`(INSERT INTO outbox_event [^`]*)`").matcher(walkthrough);
        assertThat(insert.find()).as("step 5 shows an `INSERT INTO outbox_event ...`:\n" + walkthrough).isTrue();
        String deadLetterTable = settingsDefault(Files.readString(ROOT.resolve("docs/configuration.md")), "relay.dead-letter.table");
        try (QueueRecorder consumer = broker.record(queue);
                RelayProcess relay = RelayProcess.start(dir, config).awaitReady(Duration.ofSeconds(60));
                // "To watch events without taking them from it, run tail without --queue"; step 5: "the watching tail prints it".
                RelayProcess watching = RelayProcess.command(dir, config, "tail")) {
            Progress.until("the watching `tail` to listen", STALL, () -> watching.log().length(),
                    v -> watching.log().contains("listening on exchange '" + exchange + "'"));
            db.execute(insert.group(1));
            String id = single("SELECT id::text FROM outbox_event");

            // The event comes out somewhere: on the queue, to the watching tail, or in the dead-letter table.
            Progress.until("the event " + id + " on " + queue + ", printed by the watching tail, or in " + deadLetterTable, STALL,
                    () -> consumer.count() + deadLetters(deadLetterTable).size() + (watching.log().contains(id) ? 1 : 0), v -> v > 0);
            // The broker routes a message to all its queues at once; a moment for the consumer's delivery to arrive.
            List<Delivery> deliveries = consumer.awaitQuiet(Duration.ofSeconds(2));
            List<String> parked = deadLetters(deadLetterTable);
            String watched = watching.log();

            SoftAssertions softly = new SoftAssertions();
            softly.assertThat(parked).as("dead letters in %s (reason | routing key) of the README's event", deadLetterTable).isEmpty();
            softly.assertThat(deliveries).as("deliveries to %s, bound with 'order.#' as step 3 suggests (the watching tail printed:\n%s)", queue,
                    watched).hasSize(1);
            softly.assertThat(watched).as("what the watching tail printed").contains("id=" + id + " type=OrderPlaced key=order.OrderPlaced");
            if (!deliveries.isEmpty()) {
                Delivery d = deliveries.get(0);
                Map<String, Object> headers = d.getProperties().getHeaders() == null ? Map.of() : d.getProperties().getHeaders();
                softly.assertThat(d.getEnvelope().getRoutingKey()).as("routing key").isEqualTo("order.OrderPlaced");
                softly.assertThat(d.getEnvelope().getExchange()).as("exchange").isEqualTo(exchange);
                softly.assertThat(d.getProperties().getMessageId()).as("message id (the row's id)").isEqualTo(id);
                softly.assertThat(d.getProperties().getType()).as("type").isEqualTo("OrderPlaced");
                softly.assertThat(headers.keySet()).as("AMQP headers %s", headers).noneMatch(k -> k.startsWith("__debezium"));
                softly.assertThat(new String(d.getBody(), StandardCharsets.UTF_8).replace(" ", "")).as("body").isEqualTo("{\"total\":42}");
            }
            softly.assertAll();

            // "When you are done for good, stop the relay and drop its slot (SELECT pg_drop_replication_slot(...))": the README names the relay's slot.
            relay.stop();
            Matcher drop = Pattern.compile("`(SELECT pg_drop_replication_slot\\('([^']+)'\\))`").matcher(walkthrough);
            assertThat(drop.find()).as("the walkthrough says how to drop the relay's slot:\n" + walkthrough).isTrue();
            Progress.until("slot " + drop.group(2) + " to be released by the stopped relay", STALL,
                    () -> Long.parseLong(single("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + drop.group(2) + "' AND active")),
                    v -> v == 0);
            assertThat(single("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '" + drop.group(2) + "' AND database = current_database()"))
                    .as("the relay's slot is the one the README says to drop").isEqualTo("1");
            db.execute(drop.group(1));
        }
    }

    @AfterEach
    void deleteTheReadmesNames() throws Exception {
        deleteQueueAndExchange();
    }

    /** Deletes the README's queue and exchange (deleting a name that does not exist is not an error in RabbitMQ). */
    private void deleteQueueAndExchange() throws Exception {
        try (com.rabbitmq.client.Connection c = broker.newConnection(); Channel ch = c.createChannel()) {
            if (queue != null) {
                ch.queueDelete(queue);
            }
            if (exchange != null) {
                ch.exchangeDelete(exchange);
            }
        }
    }

    /**
     * The README's configuration with the keys that must point at the test's servers replaced, added
     * where the README leaves them to their defaults (ports, RabbitMQ's credentials); every other
     * line is kept as written.
     */
    private static Map<String, String> pointedAtTheTestServers(Map<String, String> readmeConfig) {
        for (String key : List.of("debezium.source.database.hostname", "debezium.source.database.user", "debezium.source.database.password",
                "debezium.source.database.dbname", "debezium.sink.rabbitmq.connection.host")) {
            assertThat(readmeConfig).as("the README's minimal configuration").containsKey(key);
        }
        Map<String, String> config = new LinkedHashMap<>(readmeConfig);
        config.put("debezium.source.database.hostname", db.server().host());
        config.put("debezium.source.database.port", Integer.toString(db.server().port()));
        config.put("debezium.source.database.user", db.server().user());
        config.put("debezium.source.database.password", db.server().password());
        config.put("debezium.source.database.dbname", db.name());
        config.put("debezium.sink.rabbitmq.connection.host", broker.server().host());
        config.put("debezium.sink.rabbitmq.connection.port", Integer.toString(broker.server().port()));
        config.put("debezium.sink.rabbitmq.connection.username", broker.server().user());
        config.put("debezium.sink.rabbitmq.connection.password", broker.server().password());
        return config;
    }

    /** The lines of a section's {@code ```properties} block, in order. */
    private static Map<String, String> propertiesBlock(String section) {
        Matcher m = Pattern.compile("```properties\\n(.*?)```", Pattern.DOTALL).matcher(section);
        assertThat(m.find()).as("a ```properties block in:\n" + section).isTrue();
        Map<String, String> config = new LinkedHashMap<>();
        for (String line : m.group(1).split("\n")) {
            String l = line.strip();
            if (l.isEmpty() || l.startsWith("#")) {
                continue;
            }
            int eq = l.indexOf('=');
            assertThat(eq).as("a key=value line: " + l).isPositive();
            config.put(l.substring(0, eq).strip(), l.substring(eq + 1).strip());
        }
        return config;
    }

    /** The text from a level-2 heading to the next one. */
    private static String section(String readme, String heading) {
        int start = readme.indexOf("\n" + heading + "\n");
        assertThat(start).as("README.md has the section " + heading).isNotNegative();
        int end = readme.indexOf("\n## ", start + heading.length() + 1);
        return readme.substring(start + 1, end < 0 ? readme.length() : end);
    }

    /** The default the settings table of docs/configuration.md (key | type | default | meaning), where the README points for them, gives {@code key}. */
    private static String settingsDefault(String page, String key) {
        Matcher m = Pattern.compile("^\\| `" + Pattern.quote(key) + "` \\| [^|]+ \\| `([^`]+)` \\|", Pattern.MULTILINE).matcher(page);
        assertThat(m.find()).as("docs/configuration.md's settings table gives the default of " + key).isTrue();
        return m.group(1);
    }

    /** Each dead letter of the README's relay as "reason | routing key", or none while the table does not exist yet. */
    private static List<String> deadLetters(String table) throws Exception {
        List<String> rows = new ArrayList<>();
        try (Connection c = db.connect(); Statement s = c.createStatement()) {
            try (ResultSet rs = s.executeQuery("SELECT to_regclass('" + table + "') IS NOT NULL")) {
                rs.next();
                if (!rs.getBoolean(1)) {
                    return rows;
                }
            }
            try (ResultSet rs = s.executeQuery("SELECT reason, routing_key FROM " + table + " ORDER BY id")) {
                while (rs.next()) {
                    rows.add(rs.getString(1) + " | " + rs.getString(2));
                }
            }
        }
        return rows;
    }

    /** The one value of a query that must return one row. */
    private static String single(String sql) throws Exception {
        try (Connection c = db.connect(); Statement s = c.createStatement(); ResultSet rs = s.executeQuery(sql)) {
            assertThat(rs.next()).as(sql).isTrue();
            String value = rs.getString(1);
            assertThat(rs.next()).as("one row from " + sql).isFalse();
            return value;
        }
    }

    /** The directory holding README.md and {@code bin/outbox-relay}, searched upwards from the working directory, as RelayProcess finds it. */
    private static Path projectRoot() {
        for (Path p = Path.of(System.getProperty("user.dir")).toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isExecutable(p.resolve("bin/outbox-relay")) && Files.exists(p.resolve("README.md"))) {
                return p;
            }
        }
        throw new IllegalStateException("bin/outbox-relay and README.md not found above " + System.getProperty("user.dir"));
    }
}
