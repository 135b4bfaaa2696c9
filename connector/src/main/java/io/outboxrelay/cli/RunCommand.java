package io.outboxrelay.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.util.concurrent.Callable;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.RelaySettings;
import io.outboxrelay.engine.EngineSupervisor;
import io.outboxrelay.http.HttpEndpoints;
import io.outboxrelay.logging.ConsoleLogFormat;
import io.outboxrelay.metrics.RelayMetrics;
import io.outboxrelay.metrics.SourceGauges;
import io.outboxrelay.retention.OutboxRetention;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "run", mixinStandardHelpOptions = true,
        description = "Streams the outbox to RabbitMQ until stopped (SIGTERM drains in-flight confirms and stores the offset). "
                + "Exits 2 on an invalid configuration, 4 when another relay already streams from the slot.")
final class RunCommand implements Callable<Integer> {

    private static final Logger LOG = LoggerFactory.getLogger(RunCommand.class);
    static final int EXIT_SLOT_IN_USE = 4;

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
        ConsoleLogFormat.use(config.relay().logFormat());
        config.warnings().forEach(w -> LOG.warn("config: {}", w));
        RelayMetrics metrics = RelayMetrics.prometheus(config.name());
        EngineSupervisor supervisor = new EngineSupervisor(config, metrics);
        metrics.register(supervisor);
        RelaySettings.Http http = config.relay().http();
        HttpEndpoints endpoints = null;
        if (http.enabled()) {
            try {
                endpoints = HttpEndpoints.start(http.host(), http.port(), supervisor, metrics);
            }
            catch (IOException e) {
                err.println("http: cannot listen on " + http.host() + ":" + http.port() + " (relay.http.host, relay.http.port): " + e.getMessage());
                err.flush();
                return ConfigOptions.EXIT_CONFIG;
            }
        }
        try (SourceGauges gauges = new SourceGauges(config, metrics); HttpEndpoints served = endpoints;
                OutboxRetention retention = new OutboxRetention(config, metrics, supervisor::leads)) {
            gauges.start(config.relay().metricsPoll());
            retention.start();
            Thread hook = new Thread(() -> {
                LOG.info("Stopping: draining in-flight confirms (up to relay.shutdown.grace.ms)");
                if (supervisor.stop()) {
                    LOG.info("Stopped: everything confirmed is acknowledged; the next start resumes after it");
                }
                else {
                    LOG.info("Stopped, with unconfirmed events left: the next start publishes them again (same message ids)");
                }
            }, "outbox-relay-shutdown");
            Runtime.getRuntime().addShutdownHook(hook);
            try {
                supervisor.run();
            }
            catch (EngineSupervisor.SlotInUseException e) {
                Runtime.getRuntime().removeShutdownHook(hook);
                LOG.error("{}", e.getMessage());
                err.println("run: " + e.getMessage());
                err.flush();
                return EXIT_SLOT_IN_USE;
            }
            catch (EngineSupervisor.StartRefusedException e) {
                Runtime.getRuntime().removeShutdownHook(hook);
                LOG.error("{}", e.getMessage());
                err.println("run: " + e.getMessage());
                err.flush();
                return ConfigOptions.EXIT_CONFIG;
            }
        }
        return 0;
    }
}
