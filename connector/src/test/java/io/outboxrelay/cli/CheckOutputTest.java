package io.outboxrelay.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code check}'s standard output is its result lines and nothing else, as a terminal and a script
 * see it: the process's own System.out and System.err, where logback's console appender writes, not
 * the writers {@link CliRun} hands picocli. Servers that refuse at once (port 1 on loopback) make the
 * relay log refusals while it checks, so a log line would land between the results if it could; no
 * server is needed.
 */
class CheckOutputTest {

    @Test
    void standardOutputHoldsOnlyResultLinesAndTheLogGoesToStandardError(@TempDir Path dir) throws Exception {
        Path file = dir.resolve("relay.properties");
        Files.writeString(file, String.join("\n", "relay.name=orders-relay", "debezium.source.database.hostname=127.0.0.1",
                "debezium.source.database.port=1", "debezium.source.database.user=outbox_relay", "debezium.source.database.password=secret",
                "debezium.source.database.dbname=shop", "debezium.sink.rabbitmq.connection.host=127.0.0.1",
                "debezium.sink.rabbitmq.connection.port=1", "debezium.sink.rabbitmq.exchange=shop.events", "relay.database.connect.timeout.ms=2000"));
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        ByteArrayOutputStream err = new ByteArrayOutputStream();
        PrintStream stdout = System.out;
        PrintStream stderr = System.err;
        int exit;
        try {
            System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            exit = OutboxRelayCommand.execute("check", "--config", file.toString());
        }
        finally {
            System.setOut(stdout);
            System.setErr(stderr);
        }
        String printed = out.toString(StandardCharsets.UTF_8);
        String logged = err.toString(StandardCharsets.UTF_8);
        assertThat(exit).as("exit code; stdout:\n%s\nstderr:\n%s", printed, logged).isEqualTo(1);
        assertThat(printed.lines()).as("check's standard output").isNotEmpty()
                .allSatisfy(line -> assertThat(line).matches("\\[( OK |WARN|FAIL)\\] .*"))
                .anySatisfy(line -> assertThat(line).startsWith("[FAIL] PostgreSQL at 127.0.0.1:1/shop"));
        assertThat(logged).as("the access trail's refusal, on standard error").contains("PostgreSQL connection refused for outbox-relay check");
    }
}
