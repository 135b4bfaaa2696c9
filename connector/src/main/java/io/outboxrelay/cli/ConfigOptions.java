package io.outboxrelay.cli;

import java.io.PrintWriter;
import java.nio.file.Path;

import io.outboxrelay.config.ConfigProblems;
import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.RelayConfigLoader;
import picocli.CommandLine.Option;

/** The options every command that reads a configuration shares. */
final class ConfigOptions {

    static final int EXIT_CONFIG = 2;

    /**
     * For the commands that publish over AMQP only ({@code redrive}, {@code replay}): a stream
     * configuration is refused with a line, rather than published to an AMQP broker it never named.
     */
    static boolean publishesOverAmqp(RelayConfig config, PrintWriter err, String command) {
        if (!config.streams()) {
            return true;
        }
        err.println(command + ": publishes over AMQP (debezium.sink.rabbitmq.*) only, and this configuration publishes to RabbitMQ Streams "
                + "(debezium.sink.type=rabbitmqstream). Use a configuration with the rabbitmq sink for it: a stream is read by position, so "
                + "its consumers replay from the stream itself");
        err.flush();
        return false;
    }

    @Option(names = { "-c", "--config" }, paramLabel = "FILE", defaultValue = "${env:OUTBOX_RELAY_CONFIG}",
            description = "The properties file (default: $OUTBOX_RELAY_CONFIG).")
    Path config;

    @Option(names = "--secrets-dir", paramLabel = "DIR", defaultValue = "${env:OUTBOX_RELAY_SECRETS_DIR}",
            description = "A directory of files named after keys, whose contents are the values (e.g. a mounted Kubernetes Secret; default: $OUTBOX_RELAY_SECRETS_DIR).")
    Path secretsDir;

    /** The loaded configuration, or null after printing one line per problem to {@code err}. */
    RelayConfig load(PrintWriter err) {
        try {
            return RelayConfigLoader.load(config, secretsDir);
        }
        catch (ConfigProblems problems) {
            for (String p : problems.problems()) {
                err.println("config: " + p);
            }
            err.flush();
            return null;
        }
    }
}
