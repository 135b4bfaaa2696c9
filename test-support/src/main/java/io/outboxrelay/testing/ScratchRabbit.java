package io.outboxrelay.testing;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;

/**
 * A second RabbitMQ node of the locally installed version, for tests that need a broker set up
 * differently from the shared one: here, a TLS-only listener on a free loopback port whose server
 * certificate is {@link TestCertificates}' (for {@code localhost} only), a TLS-only stream listener
 * with the same certificate, and the EXTERNAL
 * mechanism (the client certificate's common name is the user). Runs as the {@code rabbitmq} OS
 * user with its own config, data, logs and distribution port, so the shared node is untouched.
 */
public final class ScratchRabbit implements AutoCloseable {

    private final Path dir;
    private final String node;
    private final int port;
    private final int streamPort;

    private ScratchRabbit(Path dir, String node, int port, int streamPort) {
        this.dir = dir;
        this.node = node;
        this.port = port;
        this.streamPort = streamPort;
    }

    public static ScratchRabbit startTls(TestCertificates certs) throws IOException {
        Path dir = Files.createTempDirectory("scratch-rabbit");
        int port = freePort();
        int streamPort = freePort();
        int distPort = freePort();
        String node = "scratch" + Long.toHexString(System.nanoTime()) + "@localhost";
        Files.copy(certs.caCert(), dir.resolve("ca.crt"));
        Files.copy(certs.serverCert(), dir.resolve("server.crt"));
        Files.copy(certs.serverKey(), dir.resolve("server.key"));
        Files.writeString(dir.resolve("rabbitmq.conf"), String.join("\n",
                "listeners.tcp = none",
                "listeners.ssl.default = 127.0.0.1:" + port,
                "stream.listeners.tcp = none",
                "stream.listeners.ssl.default = 127.0.0.1:" + streamPort,
                "ssl_options.cacertfile = " + dir.resolve("ca.crt"),
                "ssl_options.certfile = " + dir.resolve("server.crt"),
                "ssl_options.keyfile = " + dir.resolve("server.key"),
                "ssl_options.verify = verify_peer",
                "ssl_options.fail_if_no_peer_cert = false",
                "auth_mechanisms.1 = PLAIN",
                "auth_mechanisms.2 = EXTERNAL",
                "ssl_cert_login_from = common_name",
                "loopback_users = none", ""));
        Files.writeString(dir.resolve("enabled_plugins"), "[rabbitmq_auth_mechanism_ssl,rabbitmq_stream].\n");
        Files.writeString(dir.resolve("env.conf"), "");
        ServerControl.run("chown", "-R", "rabbitmq", dir.toString());
        ScratchRabbit rabbit = new ScratchRabbit(dir, node, port, streamPort);
        List<String> start = new ArrayList<>(rabbit.env());
        start.addAll(List.of("RABBITMQ_CONFIG_FILE=" + dir.resolve("rabbitmq.conf"), "RABBITMQ_MNESIA_BASE=" + dir.resolve("mnesia"),
                "RABBITMQ_LOG_BASE=" + dir.resolve("log"), "RABBITMQ_ENABLED_PLUGINS_FILE=" + dir.resolve("enabled_plugins"),
                "RABBITMQ_DIST_PORT=" + distPort, "ERL_EPMD_ADDRESS=127.0.0.1", "rabbitmq-server", "-detached"));
        ServerControl.run(start.toArray(String[]::new));
        // -detached returns before the node has registered with epmd; until then rabbitmqctl cannot reach it at all.
        long deadline = System.nanoTime() + java.util.concurrent.TimeUnit.SECONDS.toNanos(60);
        while (true) {
            try {
                rabbit.ctl("await_startup");
                return rabbit;
            }
            catch (IllegalStateException e) {
                if (System.nanoTime() > deadline) {
                    // Nobody holds this node yet, so nobody else would stop it.
                    try {
                        rabbit.close();
                    }
                    catch (IllegalStateException ignored) {
                        // It may never have come up far enough to be stopped.
                    }
                    throw new IllegalStateException("the scratch RabbitMQ node did not start within 60 s", e);
                }
                try {
                    Thread.sleep(500);
                }
                catch (InterruptedException ie) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException(ie);
                }
            }
        }
    }

    public int port() {
        return port;
    }

    /** The TLS-only stream listener (the same certificate). */
    public int streamPort() {
        return streamPort;
    }

    /** Runs rabbitmqctl against this node. */
    public String ctl(String... args) {
        List<String> cmd = new ArrayList<>(env());
        cmd.add("rabbitmqctl");
        cmd.add("-q");
        cmd.add("-n");
        cmd.add(node);
        cmd.addAll(List.of(args));
        return ServerControl.run(cmd.toArray(String[]::new));
    }

    /** A user with every permission on the default virtual host. */
    public void addUser(String name, String password) {
        ctl("add_user", name, password);
        ctl("set_permissions", "-p", "/", name, ".*", ".*", ".*");
    }

    /** A connection for the test itself, verified TLS with {@code certs}' trust store, as {@code user}. */
    public Connection connect(TestCertificates certs, String user, String password) throws Exception {
        ConnectionFactory factory = new ConnectionFactory();
        factory.setHost("localhost");
        factory.setPort(port);
        factory.setUsername(user);
        factory.setPassword(password);
        factory.useSslProtocol(certs.sslContext());
        factory.enableHostnameVerification();
        return factory.newConnection("test");
    }

    @Override
    public void close() {
        try {
            ctl("stop");
        }
        finally {
            ServerControl.run("rm", "-rf", dir.toString());
        }
    }

    private List<String> env() {
        return List.of("runuser", "-u", "rabbitmq", "--", "env", "RABBITMQ_CONF_ENV_FILE=" + dir.resolve("env.conf"), "RABBITMQ_NODENAME=" + node);
    }

    private static int freePort() throws IOException {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }
}
