package io.outboxrelay.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Stops and starts the local servers for fault tests, for real: the same commands
 * {@code deploy/local/services.sh} uses. Only for the local servers (the default when no endpoint
 * variable is set and no Docker engine answers).
 */
public final class ServerControl {

    private ServerControl() {
    }

    public static void stopPostgres() {
        String ctl = System.getenv("OUTBOX_RELAY_TEST_PG_CTL");
        if (ctl != null && !ctl.isBlank()) {
            run(ctl, "pg-stop");
            return;
        }
        run("pg_ctlcluster", "--skip-systemctl-redirect", postgresVersion(), "main", "stop", "-m", "fast");
    }

    public static void startPostgres() {
        String ctl = System.getenv("OUTBOX_RELAY_TEST_PG_CTL");
        if (ctl != null && !ctl.isBlank()) {
            run(ctl, "pg-start");
            return;
        }
        run("pg_ctlcluster", "--skip-systemctl-redirect", postgresVersion(), "main", "start");
    }

    /**
     * Closes, from the broker's side, every connection whose client-provided name is {@code connectionName};
     * returns how many were closed.
     */
    public static int closeBrokerConnections(String connectionName) {
        int closed = 0;
        for (String line : run("rabbitmqctl", "-q", "list_connections", "pid", "client_properties").split("\n")) {
            if (line.contains("\"" + connectionName + "\"") || line.contains("{<<\"connection_name\">>,longstr,<<\"" + connectionName + "\">>}")) {
                String pid = line.substring(0, line.indexOf('\t'));
                run("rabbitmqctl", "-q", "close_connection", pid, "closed by a fault test");
                closed++;
            }
        }
        return closed;
    }

    /** Adds a RabbitMQ user with every permission on the default virtual host (for tests that log in as someone other than guest). */
    public static void addBrokerUser(String user, String password) {
        run("rabbitmqctl", "-q", "add_user", user, password);
        run("rabbitmqctl", "-q", "set_permissions", "-p", "/", user, ".*", ".*", ".*");
    }

    /** Adds a RabbitMQ user with the given configure, write and read permission patterns on the default virtual host. */
    public static void addBrokerUser(String user, String password, String configure, String write, String read) {
        run("rabbitmqctl", "-q", "add_user", user, password);
        run("rabbitmqctl", "-q", "set_permissions", "-p", "/", user, configure, write, read);
    }

    /** Changes a RabbitMQ user's password; connections already open stay open, as they do on a real rotation. */
    public static void changeBrokerPassword(String user, String password) {
        run("rabbitmqctl", "-q", "change_password", user, password);
    }

    public static void deleteBrokerUser(String user) {
        run("rabbitmqctl", "-q", "delete_user", user);
    }

    /**
     * Sets RabbitMQ's memory high watermark so low that the memory alarm goes off and publishing
     * connections are blocked; returns the previous setting for {@link #clearMemoryAlarm(String)}.
     */
    public static String raiseMemoryAlarm() {
        String previous = run("rabbitmqctl", "-q", "eval", "vm_memory_monitor:get_vm_memory_high_watermark().").trim();
        run("rabbitmqctl", "-q", "set_vm_memory_high_watermark", "0.000001");
        return previous;
    }

    /** Restores the watermark {@link #raiseMemoryAlarm()} returned (a fraction such as 0.4, or {absolute,N}). */
    public static void clearMemoryAlarm(String previous) {
        if (previous.startsWith("{absolute,")) {
            run("rabbitmqctl", "-q", "set_vm_memory_high_watermark", "absolute", previous.replaceAll("\\D", ""));
        }
        else {
            run("rabbitmqctl", "-q", "set_vm_memory_high_watermark", previous);
        }
    }

    /**
     * Sets RabbitMQ's max_message_size (channels opened afterwards enforce it); returns the previous
     * value in bytes.
     */
    public static long setMaxMessageSize(long bytes) {
        String previous = run("rabbitmqctl", "-q", "eval", "application:get_env(rabbit, max_message_size).").trim();
        run("rabbitmqctl", "-q", "eval", "application:set_env(rabbit, max_message_size, " + bytes + ").");
        return Long.parseLong(previous.replaceAll("\\D", ""));
    }

    /** Stops the RabbitMQ application: the node stays up, every connection drops, none is accepted until {@link #startRabbitMq()}. */
    public static void stopRabbitMq() {
        run("rabbitmqctl", "-q", "stop_app");
    }

    public static void startRabbitMq() {
        run("rabbitmqctl", "-q", "start_app");
        run("rabbitmqctl", "-q", "await_startup");
    }

    /** Stops the RabbitMQ application (the node stays up, every connection drops), and starts it again after {@code downFor}. */
    public static void restartRabbitMq(java.time.Duration downFor) throws InterruptedException {
        run("rabbitmqctl", "-q", "stop_app");
        try {
            Thread.sleep(downFor.toMillis());
        }
        finally {
            run("rabbitmqctl", "-q", "start_app");
            run("rabbitmqctl", "-q", "await_startup");
        }
    }

    static String postgresVersion() {
        try (Stream<Path> versions = Files.list(Path.of("/etc/postgresql"))) {
            return versions.map(p -> p.getFileName().toString())
                    .max((a, b) -> Integer.compare(Integer.parseInt(a.replaceAll("\\D.*", "")), Integer.parseInt(b.replaceAll("\\D.*", ""))))
                    .orElseThrow(() -> new IllegalStateException("no local PostgreSQL cluster under /etc/postgresql"));
        }
        catch (IOException e) {
            throw new IllegalStateException("fault tests need the local PostgreSQL set up by deploy/local/services.sh", e);
        }
    }

    /**
     * Runs a command; {@code rabbitmqctl} goes to the node the tests use, which for the trixie servers
     * ({@code deploy/local/trixie.sh env}) is {@code OUTBOX_RELAY_TEST_RABBITMQCTL}, a command line
     * that runs trixie's rabbitmqctl against the RabbitMQ 4.0 node.
     */
    static String run(String... command) {
        List<String> line = new java.util.ArrayList<>(List.of(command));
        String ctl = System.getenv("OUTBOX_RELAY_TEST_RABBITMQCTL");
        if (ctl != null && !ctl.isBlank() && "rabbitmqctl".equals(line.get(0))) {
            line.remove(0);
            line.addAll(0, List.of(ctl.trim().split("\\s+")));
        }
        try {
            Process p = new ProcessBuilder(line).redirectErrorStream(true).start();
            // Output is read before waiting so that a chatty command cannot fill the pipe and hang.
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException(String.join(" ", command) + " did not finish within 120 s");
            }
            if (p.exitValue() != 0) {
                throw new IllegalStateException(String.join(" ", command) + " failed (" + p.exitValue() + "): " + out);
            }
            return out;
        }
        catch (IOException e) {
            throw new IllegalStateException("cannot run " + String.join(" ", command), e);
        }
        catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted running " + String.join(" ", command), e);
        }
    }
}
