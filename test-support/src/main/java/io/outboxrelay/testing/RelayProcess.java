package io.outboxrelay.testing;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * The relay as users run it: the shaded jar through the shipped launcher ({@code bin/outbox-relay},
 * with its JVM options), in a process of its own, so that tests can kill it, read what it logged and
 * ask its HTTP endpoints, measure its memory and CPU. Needs {@code mvn package} to have built the
 * jar (Failsafe runs after it).
 */
public final class RelayProcess implements AutoCloseable {

    private static final Path ROOT = projectRoot();
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    private final Process process;
    private final Path log;
    private final int httpPort;

    private RelayProcess(Process process, Path log, int httpPort) {
        this.process = process;
        this.log = log;
        this.httpPort = httpPort;
    }

    /** Writes {@code config} to {@code dir}, with the HTTP endpoints on a free port, and starts {@code outbox-relay run}. */
    public static RelayProcess start(Path dir, Map<String, String> config) throws IOException {
        return start(dir, config, null);
    }

    /** As {@link #start(Path, Map)}, with {@code --secrets-dir secretsDir} when it is not null. */
    public static RelayProcess start(Path dir, Map<String, String> config, Path secretsDir) throws IOException {
        int port = freePort();
        Path file = RelayFiles.write(dir, config, "relay.http.host=127.0.0.1", "relay.http.port=" + port);
        // Logs stay in target/ after the test, for whoever reads a failure.
        Path logs = Files.createDirectories(Path.of(System.getProperty("user.dir"), "target", "relay-logs"));
        Path log = logs.resolve(config.getOrDefault("relay.name", "relay") + "-" + System.nanoTime() + ".log");
        List<String> command = new ArrayList<>(List.of(ROOT.resolve("bin/outbox-relay").toString(), "run", "--config", file.toString()));
        if (secretsDir != null) {
            command.addAll(List.of("--secrets-dir", secretsDir.toString()));
        }
        ProcessBuilder pb = new ProcessBuilder(command)
                .redirectErrorStream(true)
                .redirectOutput(log.toFile());
        pb.environment().put("OUTBOX_RELAY_JAR", ROOT.resolve("connector/target/outbox-relay.jar").toString());
        return started(pb.start(), log, port);
    }

    /**
     * Starts {@code outbox-relay <command> --config <file> <args>} as a process of its own (a
     * {@code redrive} to SIGKILL half-way, say); its output goes to its {@link #log()}.
     */
    public static RelayProcess command(Path dir, Map<String, String> config, String command, String... args) throws IOException {
        Path file = RelayFiles.write(dir, config);
        Path logs = Files.createDirectories(Path.of(System.getProperty("user.dir"), "target", "relay-logs"));
        Path log = logs.resolve(config.getOrDefault("relay.name", "relay") + "-" + command + "-" + System.nanoTime() + ".log");
        List<String> line = new ArrayList<>(List.of(ROOT.resolve("bin/outbox-relay").toString(), command, "--config", file.toString()));
        line.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(line).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("OUTBOX_RELAY_JAR", ROOT.resolve("connector/target/outbox-relay.jar").toString());
        return started(pb.start(), log, -1);
    }

    /** Recorded, so that a failing test shows this log with its failure ({@link RelayLogs}). */
    private static RelayProcess started(Process process, Path log, int httpPort) {
        RelayLogs.record(log, process);
        return new RelayProcess(process, log, httpPort);
    }

    /** Waits until a process of {@link #command} ends; returns its exit code. */
    public int await(Duration timeout) throws InterruptedException {
        if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
            throw new AssertionError("the process did not end within " + timeout.toSeconds() + " s");
        }
        return process.exitValue();
    }

    /** Waits until readiness answers 200; fails with the relay's log if it exits or does not get there in time. */
    public RelayProcess awaitReady(Duration timeout) throws IOException, InterruptedException {
        long deadline = System.nanoTime() + timeout.toNanos();
        while (System.nanoTime() < deadline) {
            if (!process.isAlive()) {
                throw new IllegalStateException("the relay exited with " + process.exitValue() + ":\n" + log());
            }
            if (get("/q/health/ready").status() == 200) {
                return this;
            }
            Thread.sleep(100);
        }
        // Thrown from a try-with-resources header, this process would never be closed: stop it here.
        String log = log();
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
        throw new IllegalStateException("the relay was not ready within " + timeout + ":\n" + log);
    }

    /** GETs a path of the relay's HTTP endpoints. */
    public Answer get(String path) throws InterruptedException {
        try {
            HttpResponse<String> r = HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + httpPort + path))
                    .timeout(Duration.ofSeconds(5)).build(), HttpResponse.BodyHandlers.ofString());
            return new Answer(r.statusCode(), r.body());
        }
        catch (IOException e) {
            return new Answer(0, "");
        }
    }

    /** The value of one Prometheus sample, e.g. {@code outbox_relay_in_flight{relay="x"}}, or NaN when absent. */
    public double metric(String sample) throws InterruptedException {
        for (String line : get("/q/metrics").body().split("\n")) {
            if (line.startsWith(sample + " ")) {
                return Double.parseDouble(line.substring(sample.length() + 1).trim());
            }
        }
        return Double.NaN;
    }

    /** The value of the one sample of {@code name}, whatever its labels (a gauge of the relay), or NaN when absent. */
    public double gauge(String name) throws InterruptedException {
        for (String line : get("/q/metrics").body().split("\n")) {
            if (line.startsWith(name + "{") || line.startsWith(name + " ")) {
                return Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1).trim());
            }
        }
        return Double.NaN;
    }

    public String log() throws IOException {
        return Files.readString(log);
    }

    /** The port of its health and metrics endpoints. */
    public int httpPort() {
        return httpPort;
    }

    public long pid() {
        return process.pid();
    }

    public boolean isAlive() {
        return process.isAlive();
    }

    /** SIGKILL: no drain, no final offset flush. */
    public void kill() throws InterruptedException {
        process.destroyForcibly();
        process.waitFor(30, TimeUnit.SECONDS);
    }

    /** SIGSTOP: the process stands still, its connections stay open, as in a long GC or VM pause. */
    public void freeze() {
        ServerControl.run("kill", "-STOP", Long.toString(process.pid()));
    }

    /** SIGCONT after {@link #freeze()}. */
    public void thaw() {
        ServerControl.run("kill", "-CONT", Long.toString(process.pid()));
    }

    /** SIGTERM, as an orchestrator stops it; returns the exit code. */
    public int stop() throws InterruptedException {
        process.destroy();
        if (!process.waitFor(90, TimeUnit.SECONDS)) {
            process.destroyForcibly();
            process.waitFor(30, TimeUnit.SECONDS);
        }
        return process.exitValue();
    }

    @Override
    public void close() throws InterruptedException {
        if (process.isAlive()) {
            stop();
        }
    }

    /** Peak resident memory (VmHWM) in bytes. */
    public long peakRssBytes() throws IOException {
        return ProcessUsage.peakRssBytes(process.pid());
    }

    /** User plus system CPU time used so far, in seconds. */
    public double cpuSeconds() throws IOException {
        return ProcessUsage.cpuSeconds(process.pid());
    }

    /** The directory holding {@code bin/outbox-relay}, searched upwards from the working directory. */
    private static Path projectRoot() {
        for (Path p = Path.of(System.getProperty("user.dir")).toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isExecutable(p.resolve("bin/outbox-relay"))) {
                return p;
            }
        }
        throw new IllegalStateException("bin/outbox-relay not found above " + System.getProperty("user.dir"));
    }

    private static int freePort() throws IOException {
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    /** An HTTP answer; status 0 stands for a refused connection, so callers can poll without catching. */
    public record Answer(int status, String body) {
    }
}
