package io.outboxrelay.http;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicInteger;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;

import io.outboxrelay.engine.Health;
import io.outboxrelay.metrics.RelayMetrics;

/**
 * Liveness, readiness and Prometheus metrics over HTTP. The JDK's own server is enough for three
 * read-only resources scraped every few seconds, and keeps a web framework out of the relay. The
 * paths are Debezium Server's ({@code /q/health/live}, {@code /q/health/ready}, {@code /q/metrics}),
 * so probes written for it keep working, plus the shorter {@code /health/*} and {@code /metrics}.
 * <p>
 * A probe must get its answer even while another client holds a half-sent request open: the JDK
 * server reads a request on an executor thread, so there are several, and it drops a request not
 * read or answered within {@link #REQUEST_TIMEOUT_SECONDS}.
 */
public final class HttpEndpoints implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(HttpEndpoints.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    static final int THREADS = 4;
    static final int REQUEST_TIMEOUT_SECONDS = 5;

    static {
        // Read once by the JDK server's configuration when its first server is created; a -D given by the user wins.
        System.setProperty("sun.net.httpserver.maxReqTime", System.getProperty("sun.net.httpserver.maxReqTime", Integer.toString(REQUEST_TIMEOUT_SECONDS)));
        System.setProperty("sun.net.httpserver.maxRspTime", System.getProperty("sun.net.httpserver.maxRspTime", Integer.toString(REQUEST_TIMEOUT_SECONDS)));
    }

    private final HttpServer server;

    private HttpEndpoints(HttpServer server) {
        this.server = server;
    }

    /** Binds and starts serving; port 0 picks a free one (see {@link #port()}). */
    public static HttpEndpoints start(String host, int port, Health health, RelayMetrics metrics) throws IOException {
        HttpServer server = HttpServer.create(new InetSocketAddress(host, port), 16);
        for (String prefix : new String[] { "/q", "" }) {
            server.createContext(prefix + "/health/live", ex -> respond(ex, health.live() ? 200 : 503,
                    health.live() ? status("UP", null) : status("DOWN", "the relay has stopped"), "application/json"));
            server.createContext(prefix + "/health/ready", ex -> {
                String reason = health.notReadyReason();
                respond(ex, reason == null ? 200 : 503, status(reason == null ? "UP" : "DOWN", reason), "application/json");
            });
            // 200 on the leader only: a probe or a Service selector can find the process that publishes.
            server.createContext(prefix + "/health/leader", ex -> respond(ex, health.leads() ? 200 : 503,
                    status(health.leads() ? "LEADER" : "STANDBY", null), "application/json"));
            server.createContext(prefix + "/metrics", ex -> respond(ex, 200, metrics.scrape(), "text/plain; version=0.0.4; charset=utf-8"));
        }
        AtomicInteger n = new AtomicInteger();
        server.setExecutor(Executors.newFixedThreadPool(THREADS, r -> {
            Thread t = new Thread(r, "outbox-relay-http-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        }));
        server.start();
        LOG.info("Health and metrics on http://{}:{}/q/health/ready and /q/metrics", host, server.getAddress().getPort());
        return new HttpEndpoints(server);
    }

    public int port() {
        return server.getAddress().getPort();
    }

    private static String status(String state, String reason) {
        Map<String, String> body = new LinkedHashMap<>();
        body.put("status", state);
        if (reason != null) {
            body.put("reason", reason);
        }
        try {
            return JSON.writeValueAsString(body);
        }
        catch (JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }

    private static void respond(HttpExchange ex, int code, String body, String contentType) throws IOException {
        try (ex) {
            if (!"GET".equals(ex.getRequestMethod()) && !"HEAD".equals(ex.getRequestMethod())) {
                ex.sendResponseHeaders(405, -1);
                return;
            }
            byte[] bytes = (body == null ? "" : body).getBytes(StandardCharsets.UTF_8);
            ex.getResponseHeaders().set("Content-Type", contentType);
            ex.sendResponseHeaders(code, "HEAD".equals(ex.getRequestMethod()) ? -1 : bytes.length);
            if (!"HEAD".equals(ex.getRequestMethod())) {
                try (OutputStream out = ex.getResponseBody()) {
                    out.write(bytes);
                }
            }
        }
    }

    @Override
    public void close() {
        server.stop(0);
    }
}
