package io.outboxrelay.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

/**
 * What the relay's integration tests set up alike: the outbox table of the README, a minimal
 * relay configuration for a test database and broker, and the properties file a user would write.
 */
public final class RelayFiles {

    /** The outbox table as {@code deploy/sql/outbox.sql} creates it. */
    public static final String OUTBOX_DDL = "CREATE TABLE IF NOT EXISTS outbox_event (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
            + "aggregatetype varchar(255) NOT NULL, aggregateid varchar(255) NOT NULL, type varchar(255) NOT NULL, payload jsonb, "
            + "created_at timestamptz NOT NULL DEFAULT now(), tracingspancontext varchar(256))";

    private static final Pattern CREATE_TABLE = Pattern.compile("CREATE TABLE IF NOT EXISTS .*?\\n\\);|CREATE INDEX IF NOT EXISTS [^;]*;",
            Pattern.DOTALL);

    private RelayFiles() {
    }

    /** {@code deploy/sql/relay-role.sql}, the least-privilege role users are told to create. */
    public static Path relayRoleScript() {
        for (Path p = Path.of(System.getProperty("user.dir")).toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.exists(p.resolve("deploy/sql/relay-role.sql"))) {
                return p.resolve("deploy/sql/relay-role.sql");
            }
        }
        throw new IllegalStateException("deploy/sql/relay-role.sql not found above " + System.getProperty("user.dir"));
    }

    /**
     * The CREATE TABLE and CREATE INDEX statements of {@code deploy/sql/relay-role.sql}: the offset,
     * dead-letter, lease and stream producer tables a least-privilege role is given, and their indexes.
     */
    public static List<String> relayRoleTables() throws IOException {
        Matcher m = CREATE_TABLE.matcher(Files.readString(relayRoleScript()));
        List<String> creates = new ArrayList<>();
        while (m.find()) {
            creates.add(m.group());
        }
        return creates;
    }

    /** The lines of a minimal relay configuration for {@code db} and {@code broker}, to which tests add theirs. */
    public static Map<String, String> minimalConfig(TestDatabase db, TestBroker broker, String relayName) {
        Map<String, String> p = new LinkedHashMap<>();
        p.put("relay.name", relayName);
        p.put("debezium.source.database.hostname", db.server().host());
        p.put("debezium.source.database.port", Integer.toString(db.server().port()));
        p.put("debezium.source.database.user", db.server().user());
        p.put("debezium.source.database.password", db.server().password());
        p.put("debezium.source.database.dbname", db.name());
        p.put("debezium.source.table.include.list", "public.outbox_event");
        p.put("debezium.sink.rabbitmq.connection.host", broker.server().host());
        p.put("debezium.sink.rabbitmq.connection.port", Integer.toString(broker.server().port()));
        p.put("debezium.sink.rabbitmq.connection.username", broker.server().user());
        p.put("debezium.sink.rabbitmq.connection.password", broker.server().password());
        return p;
    }

    /**
     * Turns {@code config} (from {@link #minimalConfig}) into a stream sink's: the AMQP sink's keys
     * out, Debezium Server's {@code rabbitmqstream} keys for the stream listener at {@code host:port}
     * in. Returns {@code config}.
     */
    public static Map<String, String> intoStream(Map<String, String> config, String host, int port, String user, String password, String stream) {
        config.keySet().removeIf(k -> k.startsWith("debezium.sink.rabbitmq."));
        config.put("debezium.sink.type", "rabbitmqstream");
        config.put("debezium.sink.rabbitmqstream.host", host);
        config.put("debezium.sink.rabbitmqstream.port", Integer.toString(port));
        config.put("debezium.sink.rabbitmqstream.username", user);
        config.put("debezium.sink.rabbitmqstream.password", password);
        config.put("debezium.sink.rabbitmqstream.stream", stream);
        return config;
    }

    /** Writes {@code config} as a properties file in {@code dir}, with {@code extraLines} after it; returns its path. */
    public static Path write(Path dir, Map<String, String> config, String... extraLines) throws IOException {
        Path file = dir.resolve("relay-" + System.nanoTime() + ".properties");
        StringBuilder text = new StringBuilder(config.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining("\n")));
        for (String line : extraLines) {
            text.append('\n').append(line);
        }
        Files.writeString(file, text.append('\n').toString());
        return file;
    }
}
