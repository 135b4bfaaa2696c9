package io.outboxrelay.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import io.outboxrelay.testing.TestServers;

/**
 * The broker's ceiling on this machine: RabbitMQ's PerfTest publishing messages of the same size,
 * persistent, with publisher confirms and the relay's in-flight window, to one queue with one
 * consumer — the same shape as the relay's run. Runs in a process of its own, on the classpath
 * bench/run.sh resolves from bench/perftest/pom.xml (system property {@code perftest.classpath}).
 */
final class PerfTestCeiling {

    private static final Pattern RATE = Pattern.compile("sending rate avg: (\\d+) msg/s");

    static double measure(TestServers.RabbitEndpoint broker, int bodyBytes, int window, int seconds) throws IOException, InterruptedException {
        String uri = "amqp://" + broker.user() + ":" + broker.password() + "@" + broker.host() + ":" + broker.port();
        List<String> command = List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-cp", System.getProperty("perftest.classpath"),
                "com.rabbitmq.perf.PerfTest", "--uri", uri, "--producers", "1", "--consumers", "1", "--size", Integer.toString(bodyBytes),
                "--flag", "persistent", "--confirm", Integer.toString(window), "--time", Integer.toString(seconds),
                "--queue", "outbox-relay-bench-perftest", "--auto-delete", "true", "--id", "ceiling");
        Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(seconds + 60L, TimeUnit.SECONDS)) {
            p.destroyForcibly();
        }
        Matcher m = RATE.matcher(out);
        if (!m.find()) {
            throw new IOException("PerfTest printed no sending rate:\n" + out);
        }
        return Double.parseDouble(m.group(1));
    }
}
