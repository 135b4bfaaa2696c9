package io.outboxrelay.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.sql.SQLException;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeoutException;

import com.rabbitmq.client.ShutdownSignalException;
import com.rabbitmq.stream.StreamException;

import io.outboxrelay.logging.ConsoleLogFormat;
import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.RelaySettings;
import io.outboxrelay.config.StreamSinkConfig;
import io.outboxrelay.sink.amqp.AmqpRepublisher;
import io.outboxrelay.deadletter.DeadLetterRedriver;
import io.outboxrelay.deadletter.Redrive;
import io.outboxrelay.deadletter.RedriveResult;
import io.outboxrelay.deadletter.Republisher;
import io.outboxrelay.sink.stream.StreamRepublisher;
import io.outboxrelay.sink.amqp.AmqpConnectionFactory;
import io.outboxrelay.sink.stream.StreamEnvironments;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "redrive", mixinStandardHelpOptions = true,
        description = "Publishes parked dead letters again with their original exchange (or stream), routing key, properties and message ids, "
                + "in the order they were parked, and marks each one the broker confirmed and routed as re-driven. One redrive of a relay at a time "
                + "(a second waits). Into a stream each event is stored once, even when a redrive is cut off and run again. Exits 1 if any stayed parked.")
final class RedriveCommand implements Callable<Integer> {

    @Mixin
    ConfigOptions options;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Selection selection;

    @Option(names = "--reason", paramLabel = "TEXT", description = "Only dead letters whose reason contains TEXT (e.g. unroutable).")
    String reason;

    @Option(names = "--discard", description = "Do not publish the events given with --id: mark them discarded (their rows stay, re-driven, "
            + "the reason saying so), then publish what their aggregates held behind them (relay.dead-letter.order=keep-aggregate).")
    boolean discard;

    @Spec
    CommandSpec spec;

    static final class Selection {
        @Option(names = "--all", required = true, description = "Every parked dead letter of this relay.")
        boolean all;

        @Option(names = "--id", paramLabel = "EVENT_ID", split = ",", required = true, description = "Only these event ids (repeat or comma-separate).")
        List<String> ids;
    }

    @Override
    public Integer call() throws InterruptedException {
        ConsoleLogFormat.auditRefusalsOnly();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        RelayConfig config = options.load(err);
        if (config == null) {
            return ConfigOptions.EXIT_CONFIG;
        }
        if (discard && (selection.ids == null || reason != null)) {
            err.println("redrive: --discard takes the events to discard with --id (and no --reason): it never discards all of them");
            err.flush();
            return ConfigOptions.EXIT_CONFIG;
        }
        Redrive which = discard ? Redrive.discarding(selection.ids) : new Redrive(selection.ids == null ? List.of() : selection.ids, reason);
        DeadLetterRedriver redriver = new DeadLetterRedriver(config.database(), config.relay().deadLetterTable(), config.name(),
                config.relay().deadLetterOrder() == RelaySettings.DeadLetterOrder.KEEP_AGGREGATE);
        String brokerSettings = config.streams() ? StreamSinkConfig.PREFIX + "*" : "debezium.sink.rabbitmq.connection.*";
        RedriveResult result;
        try (Republisher republisher = config.streams() ? new StreamRepublisher(config.stream(), "outbox-relay redrive " + config.name())
                : new AmqpRepublisher(AmqpConnectionFactory.forSink(config.sink()), "outbox-relay redrive " + config.name(), config.sink().ackTimeout())) {
            result = redriver.redrive(which, republisher, line -> {
                err.println("redrive: " + line);
                err.flush();
            });
        }
        catch (SQLException e) {
            err.println("redrive: cannot read " + config.relay().deadLetterTable() + " (relay.dead-letter.table): " + e.getMessage());
            err.flush();
            return StatusCommand.EXIT_UNREACHABLE;
        }
        catch (IOException | TimeoutException | ShutdownSignalException | StreamException e) {
            err.println("redrive: publishing to RabbitMQ failed (" + brokerSettings + "): "
                    + (!config.streams() ? describe(e) : e instanceof StreamException ? StreamEnvironments.explain(config.stream(), e) : e.getMessage())
                    + "; events not confirmed stay parked");
            err.flush();
            return StatusCommand.EXIT_UNREACHABLE;
        }
        result.discarded().forEach(id -> out.println("discarded        " + id));
        result.republished().forEach(id -> out.println("republished      " + id));
        result.stillUnroutable().forEach(id -> out.println("still unroutable " + id));
        result.notRedrivable().forEach(r -> out.println("not re-drivable  " + r + " (the outbox row itself is invalid: fix it and write a new row)"));
        if (result.heldBack() > 0) {
            out.println("held back        " + result.heldBack() + " event(s) of the same aggregates, which stay parked behind those "
                    + "(relay.dead-letter.order=keep-aggregate; fix the cause, or redrive --discard --id the one in the way)");
        }
        out.printf("%d republished, %d still unroutable, %d not re-drivable%s%n", result.republished().size(), result.stillUnroutable().size(),
                result.notRedrivable().size(), discard ? ", " + result.discarded().size() + " discarded" : "");
        out.flush();
        return result.stillUnroutable().isEmpty() && result.notRedrivable().isEmpty() && result.heldBack() == 0 ? 0 : 1;
    }

    private static String describe(Exception e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) {
            t = t.getCause();
        }
        return t instanceof ShutdownSignalException s && s.getReason() != null ? s.getReason().toString() : String.valueOf(t.getMessage());
    }
}
