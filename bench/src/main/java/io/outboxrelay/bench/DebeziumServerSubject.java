package io.outboxrelay.bench;

import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.Delivery;


/**
 * Debezium Server 3.6.1 with its RabbitMQ sink and Debezium's outbox {@code EventRouter}, as an
 * outbox user would configure it, from the distribution {@code bench/debezium-server.sh} unpacks.
 * It runs on a Java 21+ (the Temurin under /usr/lib/jvm) with its own launcher and default JVM
 * settings. {@code tuned} adds what its documentation suggests for latency and throughput: a short
 * poll interval and larger batches and queue.
 */
final class DebeziumServerSubject implements Subject {

    static final Path HOME = Path.of("bench/target/debezium-server");
    private static final Pattern UUID = Pattern.compile("[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}");
    private static final JsonFactory JSON = new JsonFactory();
    private static final HttpClient HTTP = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();

    private final boolean tuned;
    private final boolean streams;
    private final Path javaHome;

    private DebeziumServerSubject(boolean tuned, boolean streams, Path javaHome) {
        this.tuned = tuned;
        this.streams = streams;
        this.javaHome = javaHome;
    }

    /** Debezium Server with its defaults, and tuned; fails with what to do when the distribution or a Java 21+ is missing. */
    static Stream<Subject> both() {
        return both(false);
    }

    /** The same with its {@code rabbitmqstream} sink ({@code streams}) or its RabbitMQ sink. */
    static Stream<Subject> both(boolean streams) {
        if (!Files.isExecutable(HOME.resolve("run.sh"))) {
            throw new IllegalStateException("Debezium Server is not unpacked in " + HOME + ": run bench/debezium-server.sh (bench/run.sh does when given --debezium-server)");
        }
        Path java = javaHome().orElseThrow(() -> new IllegalStateException(
                "Debezium Server 3.6 needs Java 21 or later: none under /usr/lib/jvm; set DEBEZIUM_SERVER_JAVA_HOME"));
        return Stream.of(new DebeziumServerSubject(false, streams, java), new DebeziumServerSubject(true, streams, java));
    }

    @Override
    public String label() {
        return (streams ? "ds stream" : "debezium-server") + (tuned ? " tuned" : "");
    }

    @Override
    public String stream(String slot) {
        return streams ? BenchRelay.streamName(slot, tuned ? "ds-tuned" : "ds") : null;
    }

    @Override
    public Running start(BenchDatabase db, String slot) throws Exception {
        Path offsets = HOME.resolve("data").resolve(slot + ".offsets").toAbsolutePath();
        Files.createDirectories(offsets.getParent());
        Files.deleteIfExists(offsets);
        return launch(db, slot, offsets);
    }

    /** Starts it on {@code slot} with the offsets in {@code offsets} (kept from an earlier run of it, if any). */
    private Running launch(BenchDatabase db, String slot, Path offsets) throws Exception {
        int port = freePort();
        Files.writeString(HOME.resolve("config/application.properties"), config(db, slot, port, offsets).entrySet().stream()
                .map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining("\n", "", "\n")));
        Path logs = Files.createDirectories(Path.of("bench/target/logs"));
        Path log = logs.resolve(slot + "-" + (tuned ? "tuned" : "defaults") + "-" + System.nanoTime() + ".log");
        ProcessBuilder pb = new ProcessBuilder("./run.sh").directory(HOME.toFile()).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("JAVA_HOME", javaHome.toString());
        // Its documented requirement on recent JDKs.
        pb.environment().put("JAVA_OPTS", "--add-opens java.base/java.lang=ALL-UNNAMED");
        long t0 = System.nanoTime();
        Process process = pb.start();
        long deadline = t0 + Duration.ofSeconds(120).toNanos();
        while (!(ready(port) && slotActive(db, slot))) {
            if (!process.isAlive() || System.nanoTime() > deadline) {
                process.destroyForcibly();
                throw new IllegalStateException("Debezium Server did not start streaming; its log: " + log.toAbsolutePath());
            }
            Thread.sleep(10);
        }
        double startSeconds = (System.nanoTime() - t0) / 1e9;
        return new Running() {
            @Override
            public long pid() {
                return process.pid();
            }

            @Override
            public double startSeconds() {
                return startSeconds;
            }

            @Override
            public Running killAndRestart() throws Exception {
                process.destroyForcibly();
                process.waitFor(30, TimeUnit.SECONDS);
                return launch(db, slot, offsets);
            }

            @Override
            public void close() throws InterruptedException {
                process.destroy();
                if (!process.waitFor(60, TimeUnit.SECONDS)) {
                    process.destroyForcibly();
                    process.waitFor(30, TimeUnit.SECONDS);
                }
            }
        };
    }

    private Map<String, String> config(BenchDatabase db, String slot, int port, Path offsets) {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("debezium.sink.type", "rabbitmq");
        p.putAll(BenchRelay.endpoints(db));
        if (streams) {
            p.keySet().removeIf(k -> k.startsWith("debezium.sink.rabbitmq."));
            p.putAll(BenchRelay.streamEndpoints(stream(slot)));
        }
        p.put("debezium.source.connector.class", "io.debezium.connector.postgresql.PostgresConnector");
        p.put("debezium.source.offset.storage.file.filename", offsets.toString());
        p.put("debezium.source.topic.prefix", slot);
        p.put("debezium.source.plugin.name", "pgoutput");
        p.put("debezium.source.slot.name", slot);
        p.put("debezium.source.publication.name", slot);
        p.put("debezium.source.publication.autocreate.mode", "filtered");
        p.put("debezium.source.snapshot.mode", "no_data");
        p.put("debezium.transforms", "outbox");
        p.put("debezium.transforms.outbox.type", "io.debezium.transforms.outbox.EventRouter");
        // Plain JSON values and headers, as a RabbitMQ consumer of the outbox would want them.
        p.put("debezium.format.value", "json");
        p.put("debezium.format.value.schemas.enable", "false");
        p.put("debezium.format.header.schemas.enable", "false");
        if (tuned) {
            p.put("debezium.source.poll.interval.ms", "10");
            p.put("debezium.source.max.batch.size", "8192");
            p.put("debezium.source.max.queue.size", "32768");
        }
        p.put("quarkus.http.port", Integer.toString(port));
        p.put("quarkus.log.console.json", "false");
        return p;
    }

    /**
     * Its sink sets no message id: the outbox id travels in the {@code id} header (a JSON string),
     * and a JSON payload column arrives as a JSON string literal.
     */
    @Override
    public Delivery normalise(Delivery delivery) {
        AMQP.BasicProperties props = delivery.getProperties();
        Object idHeader = props.getHeaders() == null ? null : props.getHeaders().get("id");
        Matcher id = UUID.matcher(idHeader == null ? "" : idHeader.toString());
        return new Delivery(delivery.getEnvelope(), props.builder().messageId(id.find() ? id.group() : null).build(), unquote(delivery.getBody()));
    }

    private static byte[] unquote(byte[] body) {
        if (body.length == 0 || body[0] != '"') {
            return body;
        }
        try (JsonParser parser = JSON.createParser(body)) {
            return parser.nextToken() == JsonToken.VALUE_STRING ? parser.getText().getBytes(StandardCharsets.UTF_8) : body;
        }
        catch (IOException e) {
            return body;
        }
    }

    private static boolean ready(int port) throws InterruptedException {
        try {
            return HTTP.send(HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + port + "/q/health/ready")).timeout(Duration.ofSeconds(5)).build(),
                    HttpResponse.BodyHandlers.discarding()).statusCode() == 200;
        }
        catch (IOException e) {
            return false;
        }
    }

    private static boolean slotActive(BenchDatabase db, String slot) throws SQLException {
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement("SELECT active FROM pg_replication_slots WHERE slot_name = ?")) {
            ps.setString(1, slot);
            try (ResultSet rs = ps.executeQuery()) {
                return rs.next() && rs.getBoolean(1);
            }
        }
    }

    /** DEBEZIUM_SERVER_JAVA_HOME, or the newest JDK 21+ under /usr/lib/jvm. */
    private static Optional<Path> javaHome() {
        String configured = System.getenv("DEBEZIUM_SERVER_JAVA_HOME");
        if (configured != null && !configured.isBlank()) {
            return Optional.of(Path.of(configured));
        }
        try (Stream<Path> jdks = Files.list(Path.of("/usr/lib/jvm"))) {
            return jdks.filter(p -> featureVersion(p) >= 21).max((a, b) -> Integer.compare(featureVersion(a), featureVersion(b)));
        }
        catch (IOException e) {
            return Optional.empty();
        }
    }

    private static int featureVersion(Path jdk) {
        try {
            for (String line : Files.readAllLines(jdk.resolve("release"))) {
                if (line.startsWith("JAVA_VERSION=")) {
                    String v = line.substring("JAVA_VERSION=".length()).replace("\"", "");
                    return Integer.parseInt(v.split("[.+-]")[0]);
                }
            }
        }
        catch (IOException | NumberFormatException e) {
            // Not a JDK we can read.
        }
        return 0;
    }

    private static int freePort() throws IOException {
        try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
