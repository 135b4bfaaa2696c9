package io.outboxrelay.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.PrintWriter;
import java.io.StringWriter;

import org.junit.jupiter.api.Test;

import picocli.CommandLine;

class OutboxRelayCommandTest {

    private static String run(int expectedExit, String... args) {
        StringWriter out = new StringWriter();
        CommandLine cli = new CommandLine(new OutboxRelayCommand()).setOut(new PrintWriter(out)).setErr(new PrintWriter(out));
        assertThat(cli.execute(args)).isEqualTo(expectedExit);
        return out.toString();
    }

    @Test
    void helpListsTheCommands() {
        assertThat(run(0, "--help")).contains("run", "check", "status", "redrive", "tail", "--version");
        assertThat(run(0, "run", "--help")).contains("--config", "OUTBOX_RELAY_CONFIG", "--secrets-dir");
    }

    @Test
    void versionNamesDebeziumAndJava() {
        assertThat(run(0, "--version")).contains("outbox-relay ").contains("Debezium 3.6").contains("Java ");
    }

    @Test
    void missingConfigurationIsOneClearLine() {
        assertThat(run(2, "run", "--config", "/nonexistent/relay.properties"))
                .isEqualTo("config: configuration file /nonexistent/relay.properties does not exist or cannot be read" + System.lineSeparator());
    }

    @Test
    void replayRefusesAStreamConfiguration(@org.junit.jupiter.api.io.TempDir java.nio.file.Path dir) throws Exception {
        java.nio.file.Path file = dir.resolve("stream.properties");
        java.nio.file.Files.writeString(file, String.join("\n", "relay.name=orders", "debezium.source.database.hostname=db",
                "debezium.source.database.user=relay", "debezium.source.database.dbname=shop", "debezium.sink.type=rabbitmqstream",
                "debezium.sink.rabbitmqstream.stream=orders"));
        CliRun run = CliRun.of("replay", "--config", file.toString());
        assertThat(run.exit()).isEqualTo(2);
        assertThat(run.err()).contains("replay: publishes over AMQP (debezium.sink.rabbitmq.*) only", "debezium.sink.type=rabbitmqstream");
    }
}
