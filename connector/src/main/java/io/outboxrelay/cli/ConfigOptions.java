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
