package io.outboxrelay.testing;

import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * A throw-away PostgreSQL server of the locally installed version, for tests that need a server
 * configured differently from the shared one (e.g. without logical decoding). Initialised in a
 * temporary directory as the {@code postgres} OS user, on a free loopback port, trust auth.
 */
public final class ScratchPostgres implements AutoCloseable {

    private final Path dir;
    private final int port;
    private final String bin;

    private ScratchPostgres(Path dir, int port, String bin) {
        this.dir = dir;
        this.port = port;
        this.bin = bin;
    }

    /** What a test does to the data directory between initdb and the first start (its pg_hba.conf, its certificates). */
    public interface Setup {
        void prepare(Path dataDir) throws IOException;
    }

    /** Starts a server with extra {@code -c name=value} settings, e.g. {@code wal_level=replica}. */
    public static ScratchPostgres start(String... settings) throws IOException {
        return start(data -> { }, settings);
    }

    /** Starts a server whose data directory {@code setup} prepared, with extra {@code -c name=value} settings. */
    public static ScratchPostgres start(Setup setup, String... settings) throws IOException {
        String bin = "/usr/lib/postgresql/" + ServerControl.postgresVersion() + "/bin";
        Path dir = Files.createTempDirectory("scratch-pg");
        ServerControl.run("chown", "postgres", dir.toString());
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        ServerControl.run("runuser", "-u", "postgres", "--", bin + "/initdb", "-D", dir.resolve("data").toString(), "-A", "trust", "-U", "postgres");
        setup.prepare(dir.resolve("data"));
        ServerControl.run("chown", "-R", "postgres", dir.resolve("data").toString());
        StringBuilder opts = new StringBuilder("-p " + port + " -k " + dir + " -c listen_addresses=127.0.0.1");
        for (String setting : settings) {
            opts.append(" -c ").append(setting);
        }
        List<String> cmd = new ArrayList<>(List.of("runuser", "-u", "postgres", "--", bin + "/pg_ctl", "-D", dir.resolve("data").toString(),
                "-o", opts.toString(), "-l", dir.resolve("log").toString(), "-w", "start"));
        ServerControl.run(cmd.toArray(String[]::new));
        return new ScratchPostgres(dir, port, bin);
    }

    public int port() {
        return port;
    }

    /** Runs {@code script} with psql as {@code postgres} in {@code database}, stopping at the first error; {@code variables} become {@code -v name=value}. */
    public String runScript(Path script, String database, Map<String, String> variables) {
        List<String> cmd = new ArrayList<>(List.of(bin + "/psql", "-h", dir.toString(), "-p", Integer.toString(port), "-U", "postgres",
                "-v", "ON_ERROR_STOP=1", "-f", script.toString(), database));
        variables.forEach((name, value) -> cmd.addAll(List.of("-v", name + "=" + value)));
        return ServerControl.run(cmd.toArray(String[]::new));
    }

    @Override
    public void close() {
        ServerControl.run("runuser", "-u", "postgres", "--", bin + "/pg_ctl", "-D", dir.resolve("data").toString(), "-m", "immediate", "stop");
        ServerControl.run("rm", "-rf", dir.toString());
    }
}
