package io.outboxrelay.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.engine.EngineSupervisor;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Streams the outbox to RabbitMQ until stopped (SIGTERM drains in-flight confirms and stores the offset).")
final class RunCommand implements Callable<Integer> {

    private static final Logger LOG = LoggerFactory.getLogger(RunCommand.class);

    @Mixin
    ConfigOptions options;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws InterruptedException {
        PrintWriter err = spec.commandLine().getErr();
        RelayConfig config = options.load(err);
        if (config == null) {
            return ConfigOptions.EXIT_CONFIG;
        }
        config.warnings().forEach(w -> LOG.warn("config: {}", w));
        EngineSupervisor supervisor = new EngineSupervisor(config);
        Thread hook = new Thread(() -> {
            LOG.info("Stopping: draining in-flight confirms (up to relay.shutdown.grace.ms)");
            supervisor.stop();
        }, "outbox-relay-shutdown");
        Runtime.getRuntime().addShutdownHook(hook);
        supervisor.run();
        return 0;
    }
}
