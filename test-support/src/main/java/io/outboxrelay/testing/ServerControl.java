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
        run("pg_ctlcluster", "--skip-systemctl-redirect", postgresVersion(), "main", "stop", "-m", "fast");
    }

    public static void startPostgres() {
        run("pg_ctlcluster", "--skip-systemctl-redirect", postgresVersion(), "main", "start");
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

    static void run(String... command) {
        try {
            Process p = new ProcessBuilder(List.of(command)).redirectErrorStream(true).start();
            if (!p.waitFor(120, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IllegalStateException(String.join(" ", command) + " did not finish within 120 s");
            }
            String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            if (p.exitValue() != 0) {
                throw new IllegalStateException(String.join(" ", command) + " failed (" + p.exitValue() + "): " + out);
            }
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
