package io.outboxrelay.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

/** {@code outbox-relay}: the command line. */
@Command(name = "outbox-relay",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "Delivers every row of a PostgreSQL transactional outbox table to RabbitMQ, in order, with nothing lost.",
        subcommands = { RunCommand.class, CheckCommand.class, StatusCommand.class, RedriveCommand.class, ReplayCommand.class, ReshardCommand.class, TailCommand.class, SettingsCommand.class,
                CommandLine.HelpCommand.class },
        footer = { "", "Configuration: one properties file in Debezium Server's vocabulary; environment variables and -D properties override it.",
                "Run 'outbox-relay check --config FILE' before the first 'run'." })
public final class OutboxRelayCommand implements Runnable {

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        System.exit(execute(args));
    }

    static int execute(String... args) {
        return new CommandLine(new OutboxRelayCommand()).execute(args);
    }

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }
}
