package io.outboxrelay.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.sql.SQLException;
import java.time.Instant;
import java.time.format.DateTimeParseException;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeoutException;

import com.rabbitmq.client.ShutdownSignalException;

import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.logging.ConsoleLogFormat;
import io.outboxrelay.replay.OutboxReplay;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "replay", mixinStandardHelpOptions = true,
        description = "Publishes outbox rows still in the table again, with their original message ids and the current routing (the "
                + "configured transforms), with publisher confirms. Reads the table with plain SQL: never touches the relay's slot or offsets, "
                + "so a running relay is not disturbed. Exits 1 if a row could not be routed or turned into a message.")
final class ReplayCommand implements Callable<Integer> {

    @Mixin
    ConfigOptions options;

    @Option(names = "--since", paramLabel = "INSTANT", description = "Only rows at or after this time (ISO-8601, e.g. 2026-12-01T10:00:00Z).")
    String since;

    @Option(names = "--until", paramLabel = "INSTANT", description = "Only rows before this time.")
    String until;

    @Option(names = "--aggregate-type", paramLabel = "TYPE", description = "Only rows of this aggregate type (the router's route.by.field column).")
    String aggregateType;

    @Option(names = "--aggregate-id", paramLabel = "ID", description = "Only rows of this aggregate (the table.field.event.key column).")
    String aggregateId;

    @Option(names = "--type", paramLabel = "EVENT_TYPE", description = "Only rows of this event type (the table.field.event.type column).")
    String type;

    @Option(names = "--exchange", paramLabel = "NAME", description = "Publish to this exchange instead of the routed one (e.g. a new consumer's).")
    String exchange;

    @Option(names = "--time-column", paramLabel = "COLUMN", defaultValue = "created_at",
            description = "The column --since and --until compare, and rows are ordered by (default: ${DEFAULT-VALUE}).")
    String timeColumn;

    @Option(names = "--dry-run", description = "Count and route what would be published, publishing nothing.")
    boolean dryRun;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws InterruptedException {
        ConsoleLogFormat.auditRefusalsOnly();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        RelayConfig config = options.load(err);
        if (config == null || !ConfigOptions.publishesOverAmqp(config, err, "replay")) {
            return ConfigOptions.EXIT_CONFIG;
        }
        OutboxReplay.Selection which;
        try {
            which = new OutboxReplay.Selection(instant(since), instant(until), aggregateType, aggregateId, type);
        }
        catch (DateTimeParseException e) {
            err.println("replay: --since/--until must be ISO-8601 instants such as 2026-12-01T10:00:00Z: " + e.getParsedString());
            err.flush();
            return ConfigOptions.EXIT_CONFIG;
        }
        OutboxReplay.Result result;
        try {
            result = new OutboxReplay(config, timeColumn).replay(which, exchange, dryRun, out);
        }
        catch (IllegalArgumentException e) {
            err.println("replay: " + e.getMessage());
            err.flush();
            return ConfigOptions.EXIT_CONFIG;
        }
        catch (SQLException e) {
            err.println("replay: cannot read the outbox (" + String.join(", ", config.outboxTables()) + ", --time-column " + timeColumn + "): " + e.getMessage());
            err.flush();
            return StatusCommand.EXIT_UNREACHABLE;
        }
        catch (IOException | TimeoutException | ShutdownSignalException e) {
            err.println("replay: publishing to RabbitMQ failed (debezium.sink.rabbitmq.connection.*): " + e.getMessage()
                    + "; rows after the last confirmed page may not have been published: run the same replay again (duplicates keep their ids)");
            err.flush();
            return StatusCommand.EXIT_UNREACHABLE;
        }
        result.unroutable().forEach(id -> out.println("unroutable       " + id));
        result.invalid().forEach(id -> out.println("not a message    " + id + " (the router flagged the row invalid)"));
        out.printf("%d %s, %d unroutable, %d not a message%n", result.published(), dryRun ? "would be published" : "published and confirmed",
                result.unroutable().size(), result.invalid().size());
        out.flush();
        return result.unroutable().isEmpty() && result.invalid().isEmpty() ? 0 : 1;
    }

    private static Instant instant(String text) {
        return text == null ? null : Instant.parse(text);
    }
}
