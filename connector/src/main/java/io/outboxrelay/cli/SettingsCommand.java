package io.outboxrelay.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;

import io.outboxrelay.config.SettingsDoc;
import picocli.CommandLine.Command;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "settings", mixinStandardHelpOptions = true,
        description = "Prints every setting of the relay's own namespaces (relay.*, debezium.sink.rabbitmq.*, debezium.sink.rabbitmqstream.*) "
                + "with its type, default and meaning, as Markdown tables: the tables of docs/configuration.md are this output. "
                + "Debezium's own keys (debezium.source.*) are Debezium's.")
final class SettingsCommand implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        PrintWriter out = spec.commandLine().getOut();
        out.println("### relay.*");
        out.println();
        out.print(SettingsDoc.relay());
        out.println();
        out.println("### debezium.sink.rabbitmq.*");
        out.println();
        out.print(SettingsDoc.sink());
        out.println();
        out.println("### debezium.sink.rabbitmqstream.*");
        out.println();
        out.print(SettingsDoc.stream());
        out.flush();
        return 0;
    }
}
