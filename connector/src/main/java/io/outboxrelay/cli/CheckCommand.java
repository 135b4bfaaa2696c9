package io.outboxrelay.cli;

import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;

import io.outboxrelay.logging.ConsoleLogFormat;
import io.outboxrelay.check.CheckResult;
import io.outboxrelay.check.Preflight;
import io.outboxrelay.config.RelayConfig;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "check", mixinStandardHelpOptions = true,
        description = "Tests every prerequisite (configuration, PostgreSQL, wal_level, replication role, outbox table, publication, slot, "
                + "RabbitMQ, exchange) and prints one line each with what to do; exits 1 if any fails. Standard output holds only those "
                + "[ OK ]/[WARN]/[FAIL] lines; log lines go to standard error.")
final class CheckCommand implements Callable<Integer> {

    @Mixin
    ConfigOptions options;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() {
        ConsoleLogFormat.auditRefusalsOnly();
        try (ConsoleLogFormat.Restore logs = ConsoleLogFormat.toStandardError()) {
            return check();
        }
    }

    private int check() {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        RelayConfig config = options.load(err);
        if (config == null) {
            out.println("[FAIL] configuration is not valid (one line per problem on standard error)");
            out.flush();
            return ConfigOptions.EXIT_CONFIG;
        }
        config.warnings().forEach(w -> out.println("[WARN] " + w));
        List<CheckResult> results = new Preflight(config).run();
        results.forEach(out::println);
        out.flush();
        return results.stream().anyMatch(r -> r.status() == CheckResult.Status.FAIL) ? 1 : 0;
    }
}
