package io.outboxrelay.config;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.regex.Pattern;

import io.outboxrelay.config.RelaySettings.FailurePolicy;
import io.outboxrelay.credentials.Password;
import io.outboxrelay.credentials.SecretFile;
import io.outboxrelay.config.SinkConfig.RoutingKeySource;
import io.outboxrelay.offsetstore.PostgresOffsetBackingStore;
import io.outboxrelay.offsetstore.PostgresOffsetStoreConfig;
import io.outboxrelay.transforms.OutboxEventRouterConfig;
import io.smallrye.config.ConfigValue;
import io.smallrye.config.PropertiesConfigSource;
import io.smallrye.config.SmallRyeConfig;
import io.smallrye.config.SmallRyeConfigBuilder;
import io.smallrye.config.source.file.FileSystemConfigSource;

/**
 * Loads the relay's one properties file with SmallRye Config (environment variables and {@code -D}
 * system properties override it; a secrets directory, one file per key, can supply values), maps
 * Debezium Server's vocabulary onto the engine, and validates everything at once.
 */
public final class RelayConfigLoader {

    public static final String SOURCE_PREFIX = "debezium.source.";
    public static final String TRANSFORMS = "debezium.transforms";
    public static final String PREDICATES = "debezium.predicates";
    public static final String SINK_TYPE = "debezium.sink.type";
    public static final String RELAY_PREFIX = Settings.RELAY_PREFIX;
    private static final DebeziumKeys DEBEZIUM_KEYS = new DebeziumKeys();
    /** Namespaces of a Debezium Server file that mean nothing here (the relay hands Connect records to its own sink). */
    private static final List<String> IGNORED_PREFIXES = List.of("debezium.format.", "quarkus.", "debezium.api.");
    /** Above the file (100), below environment variables (300) and system properties (400). */
    private static final int SECRETS_ORDINAL = 290;
    private static final Pattern PLAIN_NAME = Pattern.compile("([A-Za-z_][A-Za-z0-9_$]{0,62}\\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}");

    private RelayConfigLoader() {
    }

    /**
     * @param file the properties file
     * @param secretsDir optional directory whose file names are keys and contents values (e.g. a mounted Kubernetes secret)
     * @throws ConfigProblems listing every problem
     */
    public static RelayConfig load(Path file, Path secretsDir) {
        if (file == null) {
            throw new ConfigProblems(List.of("no configuration file: give --config FILE or set OUTBOX_RELAY_CONFIG"));
        }
        if (!Files.isReadable(file)) {
            throw new ConfigProblems(List.of("configuration file " + file + " does not exist or cannot be read"));
        }
        Properties fileProps = new Properties();
        try (InputStream in = Files.newInputStream(file)) {
            fileProps.load(in);
        }
        catch (IOException | IllegalArgumentException e) {
            throw new ConfigProblems(List.of("configuration file " + file + " is not a valid properties file: " + e.getMessage()));
        }
        SmallRyeConfigBuilder builder = new SmallRyeConfigBuilder()
                .addDefaultSources()
                .withSources(new PropertiesConfigSource(fileProps, "file:" + file, 100));
        if (secretsDir != null) {
            if (!Files.isDirectory(secretsDir)) {
                throw new ConfigProblems(List.of("secrets directory " + secretsDir + " does not exist"));
            }
            builder.withSources(new FileSystemConfigSource(new File(secretsDir.toString()), SECRETS_ORDINAL));
        }
        return from(builder.build(), fileProps.stringPropertyNames(), secretsDir);
    }

    static RelayConfig from(SmallRyeConfig config, Set<String> fileKeys) {
        return from(config, fileKeys, null);
    }

    private static RelayConfig from(SmallRyeConfig config, Set<String> fileKeys, Path secretsDir) {
        List<String> warnings = new ArrayList<>();
        TypedReader read = new TypedReader(key -> value(config, key));
        Passwords passwords = new Passwords(config, secretsDir, read);

        // Every key the user wrote, plus -D system properties; environment variables override these by name.
        Set<String> names = new TreeSet<>(fileKeys);
        for (String name : config.getPropertyNames()) {
            if (name.startsWith("debezium.") || name.startsWith(RELAY_PREFIX)) {
                names.add(name);
            }
        }
        checkNamespaces(names, fileKeys, read, warnings);

        String sinkType = read.string(SINK_TYPE, "rabbitmq");
        boolean streams = "rabbitmqstream".equals(sinkType);
        if (!"rabbitmq".equals(sinkType) && !streams) {
            read.problem(SINK_TYPE + "=" + sinkType + " is not supported: outbox-relay publishes to RabbitMQ (use rabbitmq for exchanges and queues, "
                    + "rabbitmqstream for streams)");
        }
        checkSinkNamespace(names, streams, read, warnings);

        TypedReader.Declared r = read.declared(Settings.RELAY);
        RelaySettings.Shard shard = readShard(r, read);
        RelaySettings relay = new RelaySettings(
                RelaySettings.Shard.name(r.string(RELAY_PREFIX + "name"), shard.index(), shard.count()),
                r.choice(RELAY_PREFIX + "on-unroutable", FailurePolicy.class),
                r.choice(RELAY_PREFIX + "on-invalid", FailurePolicy.class),
                r.string(RELAY_PREFIX + "dead-letter.table"),
                r.choice(RELAY_PREFIX + "dead-letter.order", RelaySettings.DeadLetterOrder.class),
                r.millis(RELAY_PREFIX + "shutdown.grace.ms"),
                r.millis(RELAY_PREFIX + "restart.backoff.initial.ms"),
                r.millis(RELAY_PREFIX + "restart.backoff.max.ms"),
                new RelaySettings.Http(r.bool(RELAY_PREFIX + "http.enabled"), r.string(RELAY_PREFIX + "http.host"), r.integer(RELAY_PREFIX + "http.port")),
                r.millis(RELAY_PREFIX + "metrics.poll.ms"),
                r.choice(RELAY_PREFIX + "log.format", RelaySettings.LogFormat.class),
                r.list(RELAY_PREFIX + "publication.columns"),
                new RelaySettings.Leadership(r.bool(RELAY_PREFIX + "standby"), r.millis(RELAY_PREFIX + "leader.lease.ms"),
                        r.millis(RELAY_PREFIX + "leader.renew.ms"), r.string(RELAY_PREFIX + "leader.table"),
                        r.millis(RELAY_PREFIX + "leader.walsender.timeout.ms")),
                new RelaySettings.Retention(r.millis(RELAY_PREFIX + "outbox.retention.ms"), r.millis(RELAY_PREFIX + "outbox.retention.interval.ms"),
                        r.integer(RELAY_PREFIX + "outbox.retention.batch"), r.string(RELAY_PREFIX + "outbox.retention.column")),
                shard);
        if (relay.leadership().standby() && relay.leadership().renew().multipliedBy(3).compareTo(relay.leadership().lease()) > 0) {
            read.problem(RELAY_PREFIX + "leader.renew.ms=" + relay.leadership().renew().toMillis() + " must be at most a third of "
                    + RELAY_PREFIX + "leader.lease.ms=" + relay.leadership().lease().toMillis() + ", or one slow renewal loses the lease");
        }

        Properties engine = EngineDefaults.forRelay(relay.name());
        for (String name : names) {
            if (name.startsWith(SOURCE_PREFIX)) {
                engine.setProperty(name.substring(SOURCE_PREFIX.length()), value(config, name));
            }
        }
        // Secrets and overrides given only as environment variables are found by their known names.
        for (String key : List.of("database.hostname", "database.port", "database.user", "database.password", "database.dbname")) {
            String v = value(config, SOURCE_PREFIX + key);
            if (v != null) {
                engine.setProperty(key, v);
            }
        }
        mapTransforms(config, names, engine, !streams, warnings);
        checkDebeziumKeys(names, engine, warnings);
        checkSecrets(config, names, read);
        checkPublicationColumns(relay, engine, read);
        checkShards(relay, names, engine, read);
        applyWalsenderTimeout(relay, engine, read);
        String retries = engine.getProperty(EngineDefaults.RETRIES_KEY);
        if (!"0".equals(retries)) {
            // Debezium Server configurations carry it; refusing it would break them, and the relay's own restarts do the same job.
            warnings.add(SOURCE_PREFIX + EngineDefaults.RETRIES_KEY + "=" + retries + " is replaced by 0: the relay restarts the engine itself after "
                    + "a retriable error, from the stored offset and with a new sink (" + RELAY_PREFIX + "restart.backoff.initial.ms, "
                    + RELAY_PREFIX + "restart.backoff.max.ms), rather than letting Debezium restart it in place while the sink goes on counting");
            engine.setProperty(EngineDefaults.RETRIES_KEY, "0");
        }
        if ("0".equals(engine.getProperty("offset.flush.interval.ms")) && "1".equals(engine.getProperty("max.batch.size"))) {
            // Debezium Server configurations often carry the first line; beside the low-latency batch size it means a database commit per event.
            warnings.add(SOURCE_PREFIX + "offset.flush.interval.ms=0 stores the offset after every batch, and batches of one record ("
                    + SOURCE_PREFIX + "max.batch.size=1): that is a database commit per event. Remove that line (the relay stores the offset"
                    + " ten times a second)");
        }

        String host = read.required(SOURCE_PREFIX + "database.hostname", "the PostgreSQL host" + nearMiss("database.hostname", names));
        String user = read.required(SOURCE_PREFIX + "database.user", "the role the relay connects as (it needs REPLICATION)" + nearMiss("database.user", names));
        String dbname = read.required(SOURCE_PREFIX + "database.dbname", "the database holding the outbox table" + nearMiss("database.dbname", names));
        int port = new TypedReader(engine::getProperty).integer("database.port", 5432, 1, 65535);
        Map<String, String> tls = new TreeMap<>();
        for (String key : DatabaseSettings.TLS_PROPERTIES) {
            String v = engine.getProperty("database." + key);
            if (v == null) {
                // Secrets and overrides given only as environment variables, like the connection keys above.
                v = value(config, SOURCE_PREFIX + "database." + key);
            }
            if (v != null && !v.isBlank()) {
                tls.put(key, v.trim());
                engine.setProperty("database." + key, v.trim());
            }
        }
        Password databasePassword = passwords.of(SOURCE_PREFIX + "database.password");
        // A rotating password reaches Debezium's own connections through pgjdbc's plug-in (database.* go to the driver).
        if (databasePassword.file() != null) {
            databasePassword.pgjdbcProperties().forEach((k, v) -> engine.setProperty("database." + k, v));
        }
        DatabaseSettings database = new DatabaseSettings(host, port, user, databasePassword, dbname,
                r.millis(RELAY_PREFIX + "database.connect.timeout.ms"), r.millis(RELAY_PREFIX + "database.socket.timeout.ms"), tls);
        if (!"io.debezium.connector.postgresql.PostgresConnector".equals(engine.getProperty("connector.class"))) {
            read.problem(SOURCE_PREFIX + "connector.class=" + engine.getProperty("connector.class")
                    + " is not supported: outbox-relay tails PostgreSQL (io.debezium.connector.postgresql.PostgresConnector)");
        }
        if (PostgresOffsetBackingStore.class.getName().equals(engine.getProperty("offset.storage"))) {
            engine.putIfAbsent(PostgresOffsetStoreConfig.URL, database.jdbcUrl());
            if (user != null) {
                engine.putIfAbsent(PostgresOffsetStoreConfig.USER, user);
            }
            Password storePassword = passwords.of(SOURCE_PREFIX + PostgresOffsetStoreConfig.PASSWORD);
            if (!storePassword.isSet() && engine.getProperty(PostgresOffsetStoreConfig.PASSWORD_FILE) == null) {
                storePassword = databasePassword;
            }
            if (storePassword.isSet()) {
                engine.setProperty(PostgresOffsetStoreConfig.PASSWORD, storePassword.value());
            }
            if (storePassword.file() != null) {
                // The store reads its password.file again at every connection, as the relay reads the secrets directory.
                engine.setProperty(PostgresOffsetStoreConfig.PASSWORD_FILE, storePassword.file().path().toString());
            }
            if (engine.getProperty(PostgresOffsetStoreConfig.URL).equals(database.jdbcUrl())) {
                // The store's connection to the source database gets the source's TLS settings too.
                tls.forEach((k, v) -> engine.putIfAbsent(PostgresOffsetStoreConfig.DRIVER_PREFIX + k, v));
            }
        }

        if (relay.leadership().standby() && !PostgresOffsetBackingStore.class.getName().equals(engine.getProperty("offset.storage"))) {
            read.problem(RELAY_PREFIX + "standby=true needs the offsets in PostgreSQL (" + SOURCE_PREFIX + "offset.storage="
                    + PostgresOffsetBackingStore.class.getName() + ", the default): the lease beside them fences every offset write. Set "
                    + RELAY_PREFIX + "standby=false to run a single relay without standbys");
        }
        SinkConfig sink = readSink(config, names, read, warnings, passwords);
        StreamSinkConfig stream = streams ? readStream(read, warnings, passwords, relay) : null;
        if (streams && !PostgresOffsetBackingStore.class.getName().equals(engine.getProperty("offset.storage"))) {
            read.problem(SINK_TYPE + "=rabbitmqstream needs the offsets in PostgreSQL (" + SOURCE_PREFIX + "offset.storage="
                    + PostgresOffsetBackingStore.class.getName() + ", the default): the stream's publishing ids go on from the count stored "
                    + "with the offset");
        }
        if (!read.problems().isEmpty()) {
            throw new ConfigProblems(read.problems());
        }
        List<String> tables = DebeziumKeys.list(engine.getProperty("table.include.list"));
        if (relay.retention().enabled()) {
            // Retention writes these into DELETE statements: plain names only, never Debezium's patterns.
            for (String table : tables) {
                if (!PLAIN_NAME.matcher(table).matches()) {
                    read.problem(RELAY_PREFIX + "outbox.retention.ms needs " + SOURCE_PREFIX + "table.include.list to name the outbox tables, not patterns: '"
                            + table + "' is not a plain schema.table name");
                }
            }
            if (!PLAIN_NAME.matcher(relay.retention().column()).matches() || relay.retention().column().contains(".")) {
                read.problem(RELAY_PREFIX + "outbox.retention.column=" + relay.retention().column() + " is not a plain column name");
            }
            if (tables.isEmpty()) {
                read.problem(RELAY_PREFIX + "outbox.retention.ms needs " + SOURCE_PREFIX + "table.include.list (the tables to delete from)");
            }
            if (!read.problems().isEmpty()) {
                throw new ConfigProblems(read.problems());
            }
        }
        return new RelayConfig(engine, sink, stream, relay, database, tables, warnings);
    }

    /** Column lists only on a publication the relay manages, and only one that publishes inserts alone (see OutboxPublication). */
    private static void checkPublicationColumns(RelaySettings relay, Properties engine, TypedReader read) {
        if (relay.publicationColumns().isEmpty() || relay.publicationColumns().equals(List.of("*"))) {
            return;
        }
        String key = RELAY_PREFIX + "publication.columns";
        String mode = engine.getProperty("publication.autocreate.mode", "all_tables");
        if (!"filtered".equalsIgnoreCase(mode)) {
            read.problem(key + " needs the relay to manage its publication (" + SOURCE_PREFIX + "publication.autocreate.mode=filtered, the default), not "
                    + mode + "; to keep your own publication, give it a column list yourself and remove " + key);
        }
        Set<String> skipped = Set.copyOf(DebeziumKeys.list(engine.getProperty("skipped.operations")));
        if (!skipped.contains("u") || !skipped.contains("d")) {
            read.problem(key + " needs " + SOURCE_PREFIX + "skipped.operations to skip updates and deletes (u,d,t, the default): with a column list, "
                    + "a publication that sends them makes PostgreSQL refuse UPDATE and DELETE on the outbox table unless the list covers its replica identity");
        }
    }

    /**
     * A shard's slot and publication are its own (named after the shard), its publication carries a
     * row filter, and the relay must manage it; PostgreSQL refuses UPDATE and DELETE on a table
     * whose publication filters rows by a column outside the replica identity, so inserts only.
     */
    private static void checkShards(RelaySettings relay, Set<String> names, Properties engine, TypedReader read) {
        if (!relay.shard().sharded()) {
            return;
        }
        String key = RELAY_PREFIX + "shard.count";
        for (String derived : List.of("slot.name", "publication.name")) {
            if (names.contains(SOURCE_PREFIX + derived)) {
                read.problem(SOURCE_PREFIX + derived + " cannot be set with " + key + "=" + relay.shard().count() + ": each shard's is derived from "
                        + RELAY_PREFIX + "name and its index (" + engine.getProperty(derived) + "); remove it");
            }
        }
        String mode = engine.getProperty("publication.autocreate.mode", "all_tables");
        if (!"filtered".equalsIgnoreCase(mode)) {
            read.problem(key + " needs the relay to manage its publications (" + SOURCE_PREFIX + "publication.autocreate.mode=filtered, the default), not "
                    + mode + ": each shard's publication carries its row filter");
        }
        Set<String> skipped = Set.copyOf(DebeziumKeys.list(engine.getProperty("skipped.operations")));
        if (!skipped.contains("u") || !skipped.contains("d")) {
            read.problem(key + " needs " + SOURCE_PREFIX + "skipped.operations to skip updates and deletes (u,d,t, the default): PostgreSQL refuses "
                    + "UPDATE and DELETE on a table whose publication filters rows by a column outside its replica identity");
        }
    }

    /**
     * The replication connection's {@code wal_sender_timeout}, sent in its start-up options (pgjdbc's
     * {@code options}, which Debezium passes on from {@code database.*}). PostgreSQL then ends the
     * walsender of a relay that stopped answering by itself, and without writing to it; a terminated
     * walsender instead writes its farewell first, and hangs on it for as long as a frozen client's
     * socket buffers stay full. Debezium's keep-alive thread answers every
     * {@code status.update.interval.ms}, also while the sink holds the engine back, so that interval
     * is kept well inside the time-out.
     */
    private static void applyWalsenderTimeout(RelaySettings relay, Properties engine, TypedReader read) {
        long timeout = relay.leadership().walsenderTimeout().toMillis();
        if (timeout == 0) {
            return;
        }
        String key = RELAY_PREFIX + "leader.walsender.timeout.ms";
        String options = engine.getProperty("database.options", "").trim();
        if (options.contains("wal_sender_timeout")) {
            read.problem(SOURCE_PREFIX + "database.options sets wal_sender_timeout: set " + key + " instead (or " + key
                    + "=0 to keep yours), so that the relay keeps its status updates inside it");
            return;
        }
        engine.setProperty("database.options", (options.isEmpty() ? "" : options + " ") + "-c wal_sender_timeout=" + timeout);
        int interval = read.integer(SOURCE_PREFIX + "status.update.interval.ms", (int) Math.max(100, timeout / 4), 1, Integer.MAX_VALUE);
        if (2L * interval > timeout) {
            read.problem(SOURCE_PREFIX + "status.update.interval.ms=" + interval + " must be at most half of " + key + "=" + timeout
                    + ", or PostgreSQL ends the relay's walsender between two of its status updates");
        }
        engine.setProperty("status.update.interval.ms", Integer.toString(interval));
    }

    private static SinkConfig readSink(SmallRyeConfig config, Set<String> names, TypedReader read, List<String> warnings, Passwords passwords) {
        String p = SinkConfig.PREFIX;
        Map<String, String> connection = new TreeMap<>();
        for (String name : names) {
            if (name.startsWith(p + "connection.")) {
                connection.put(name.substring((p + "connection.").length()), value(config, name));
            }
        }
        for (String key : List.of("host", "port", "username", "password", "virtual.host")) {
            String v = value(config, p + "connection." + key);
            if (v != null) {
                connection.put(key, v);
            }
        }
        warnings.addAll(BrokerTls.warnings(connection));
        TypedReader.Declared d = read.declared(Settings.SINK);
        RoutingKeySource source = d.choice(p + "routingKey.source", RoutingKeySource.class);
        if (d.bool(p + "routingKeyFromTopicName")) {
            boolean explicit = d.isGiven(p + "routingKey.source");
            warnings.add(p + "routingKeyFromTopicName is deprecated; use " + p + "routingKey.source=topic"
                    + (explicit ? "" : " (taken as topic, as Debezium Server before 3.6 did)"));
            if (!explicit) {
                source = RoutingKeySource.TOPIC;
            }
        }
        return new SinkConfig(connection,
                d.string(p + "exchange"),
                d.string(p + "routingKey"),
                source,
                d.bool(p + "autoCreateRoutingKey"),
                d.bool(p + "routingKeyDurable"),
                d.integer(p + "deliveryMode"),
                d.millis(p + "ackTimeout"),
                d.string(p + "null.value"),
                d.integer(p + "max.in.flight"),
                d.number(p + "max.in.flight.bytes"),
                d.integer(p + "max.message.bytes"),
                d.millis(p + "retry.backoff.initial.ms"),
                d.millis(p + "retry.backoff.max.ms"),
                "external".equalsIgnoreCase(d.string(p + "sasl.mechanism")),
                passwords.of(p + "connection.password"));
    }

    private static final Pattern ORDINAL = Pattern.compile(".*-(\\d+)$");

    /** {@code relay.shard.*}, the index taken from a StatefulSet pod's host name when unset. */
    private static RelaySettings.Shard readShard(TypedReader.Declared r, TypedReader read) {
        String base = r.string(RELAY_PREFIX + "name");
        int count = r.integer(RELAY_PREFIX + "shard.count");
        Object given = r.values().get(RELAY_PREFIX + "shard.index");
        if (count == 1) {
            if (given != null && ((Number) given).intValue() != 0) {
                read.problem(RELAY_PREFIX + "shard.index=" + given + " needs " + RELAY_PREFIX + "shard.count above it (the count is 1)");
            }
            return RelaySettings.Shard.none(base);
        }
        int index;
        if (given != null) {
            index = ((Number) given).intValue();
        }
        else {
            String host = System.getenv().getOrDefault("HOSTNAME", "");
            java.util.regex.Matcher m = ORDINAL.matcher(host);
            if (!m.matches()) {
                read.problem(RELAY_PREFIX + "shard.index is unset and HOSTNAME=" + (host.isEmpty() ? "(unset)" : host)
                        + " does not end in a StatefulSet ordinal (-0, -1, ...): set " + RELAY_PREFIX + "shard.index");
                return RelaySettings.Shard.none(base);
            }
            index = Integer.parseInt(m.group(1));
        }
        if (index < 0 || index >= count) {
            read.problem(RELAY_PREFIX + "shard.index=" + index + " is outside 0.." + (count - 1) + " (" + RELAY_PREFIX + "shard.count=" + count + ")");
            return RelaySettings.Shard.none(base);
        }
        return new RelaySettings.Shard(index, count, base);
    }

    /** Keys of the sink that is not configured are a mistake worth a line: they would be silently ignored. */
    private static void checkSinkNamespace(Set<String> names, boolean streams, TypedReader read, List<String> warnings) {
        String other = streams ? SinkConfig.PREFIX : Settings.STREAM_PREFIX;
        List<String> ignored = names.stream().filter(n -> n.startsWith(other)).toList();
        if (!ignored.isEmpty()) {
            warnings.add(String.join(", ", ignored) + (ignored.size() == 1 ? " belongs" : " belong") + " to the "
                    + (streams ? "rabbitmq" : "rabbitmqstream") + " sink and " + (ignored.size() == 1 ? "is" : "are") + " ignored: "
                    + SINK_TYPE + "=" + (streams ? "rabbitmqstream" : "rabbitmq"));
        }
    }

    private static StreamSinkConfig readStream(TypedReader read, List<String> warnings, Passwords passwords, RelaySettings relay) {
        String p = Settings.STREAM_PREFIX;
        TypedReader.Declared d = read.declared(Settings.STREAM);
        String host = d.isGiven(p + "connection.host") ? d.string(p + "connection.host") : d.string(p + "host");
        int port = d.isGiven(p + "connection.port") ? d.integer(p + "connection.port") : d.integer(p + "port");
        if (d.isGiven(p + "connection.host") || d.isGiven(p + "connection.port")) {
            warnings.add(p + "connection.host and " + p + "connection.port are deprecated; use " + p + "host and " + p + "port");
        }
        Duration maxAge = null;
        String age = d.string(p + "stream.maxAge");
        if (age != null && !age.isBlank()) {
            try {
                maxAge = Duration.parse(age.trim());
            }
            catch (java.time.format.DateTimeParseException e) {
                read.problem(p + "stream.maxAge=" + age + " is not an ISO-8601 duration (e.g. P7D, PT12H)");
            }
        }
        for (String key : List.of(p + "stream.maxLength", p + "stream.maxSegmentSize")) {
            String v = d.string(key);
            if (v != null && !v.isBlank()) {
                try {
                    com.rabbitmq.stream.ByteCapacity.from(v.trim());
                }
                catch (IllegalArgumentException e) {
                    read.problem(key + "=" + v + " is not a byte capacity (e.g. 10gb, 500mb, 20000)");
                }
            }
        }
        if (d.integer(p + "producer.subEntrySize") != 1) {
            read.problem(p + "producer.subEntrySize=" + d.integer(p + "producer.subEntrySize") + " cannot be used: with sub-entries the broker "
                    + "de-duplicates whole batches, not messages, and an event published again could be stored twice; remove it (1)");
        }
        String producer = d.string(p + "producer.name");
        if (producer == null || producer.isBlank()) {
            producer = relay.name();
        }
        else if (relay.shard().sharded()) {
            // Each shard numbers its own events; under one name the broker would take one shard's ids for another's duplicates.
            read.problem(p + "producer.name=" + producer.trim() + " with " + RELAY_PREFIX + "shard.count=" + relay.shard().count() + ": every shard "
                    + "would publish as '" + producer.trim() + "', each with its own numbering, and the broker would drop the events of one "
                    + "shard as duplicates of another's. Remove it: each shard's producer is then named after the shard (" + relay.name() + ")");
        }
        boolean tls = d.bool(p + "tls.enable");
        if (tls && !d.bool(p + "tls.hostname.verification")) {
            warnings.add(p + "tls.hostname.verification=false: the stream connection's certificate is not checked against its host name");
        }
        String stream = d.string(p + "stream");
        Delivery delivery = new Delivery(p, Duration.ofSeconds(d.integer(p + "producer.confirmTimeout")), p + "producer.confirmTimeout",
                d.integer(p + "producer.maxUnconfirmedMessages"), d.number(p + "max.in.flight.bytes"), Integer.MAX_VALUE - 64,
                d.millis(p + "retry.backoff.initial.ms"), d.millis(p + "retry.backoff.max.ms"));
        List<String> bindingKeys = d.values().get(p + "superStream.bindingKeys") == null ? List.of() : d.list(p + "superStream.bindingKeys");
        return new StreamSinkConfig(host, port, d.string(p + "username"), passwords.of(p + "password", d.string(p + "password")), d.string(p + "virtualHost"),
                new StreamSinkConfig.Tls(tls, d.string(p + "tls.serverName"), d.string(p + "tls.trust.store"), passwords.of(p + "tls.trust.store.password", null),
                        d.bool(p + "tls.hostname.verification")),
                Duration.ofSeconds(d.integer(p + "rpcTimeout")), d.integer(p + "maxProducersByConnection"), d.integer(p + "maxTrackingConsumersByConnection"),
                d.integer(p + "maxConsumersByConnection"), Duration.ofSeconds(d.integer(p + "requestedHeartbeat")), d.integer(p + "requestedMaxFrameSize"),
                d.string(p + "id"), stream == null || stream.isBlank() ? null : stream.trim(), maxAge, d.string(p + "stream.maxLength"),
                d.string(p + "stream.maxSegmentSize"), d.bool(p + "superStream.enable"), d.integer(p + "superStream.partitions"), bindingKeys,
                producer.trim(), d.string(p + "producer.filterValue"), d.integer(p + "producer.batchSize"),
                Duration.ofMillis(d.integer(p + "producer.batchPublishingDelay")), Duration.ofSeconds(d.integer(p + "producer.enqueueTimeout")),
                d.string(p + "null.value"), delivery);
    }

    /**
     * Passwords that came from the secrets directory are kept as their files, to be read again at
     * every connection: that is what makes rotation work without a restart. A value from anywhere
     * else (the file, the environment, -D) is fixed.
     */
    private record Passwords(SmallRyeConfig config, Path secretsDir, TypedReader read) {

        Password of(String key) {
            return of(key, null);
        }

        /** As {@link #of(String)}, with the declared default when the key is not set anywhere. */
        Password of(String key, String defaultValue) {
            String value = value(config, key);
            if (value == null) {
                return Password.fixed(defaultValue);
            }
            ConfigValue v = config.getConfigValue(key);
            Path file = secretsDir == null || v.getConfigSourceOrdinal() != SECRETS_ORDINAL ? null : fileFor(key);
            if (file == null) {
                return Password.fixed(value);
            }
            SecretFile secret = SecretFile.of(file, key);
            try {
                secret.read();
            }
            catch (IllegalStateException e) {
                read.problem(e.getMessage());
            }
            return Password.inFile(secret);
        }

        /** The names SmallRye Config's file source matches a key with: as is, with _ for other characters, and that in upper case. */
        private Path fileFor(String key) {
            String underscored = key.replaceAll("[^a-zA-Z0-9_]", "_");
            for (String name : List.of(key, underscored, underscored.toUpperCase(Locale.ROOT))) {
                Path candidate = secretsDir.resolve(name);
                if (Files.isRegularFile(candidate)) {
                    return candidate;
                }
            }
            return null;
        }
    }

    /**
     * Debezium Server's SMT chain, as is; Debezium's outbox router is swapped for ours, a superset with the same output.
     * Every outbox router in the chain, whether the relay installs it or the file names it, is then set up as the sink needs it.
     */
    private static void mapTransforms(SmallRyeConfig config, Set<String> names, Properties engine, boolean exchanges, List<String> warnings) {
        String chain = value(config, TRANSFORMS);
        for (String name : names) {
            if (name.startsWith(TRANSFORMS + ".") || name.startsWith(PREDICATES)) {
                engine.setProperty(name.substring("debezium.".length()), value(config, name));
            }
        }
        if (chain == null || chain.isBlank()) {
            engine.setProperty("transforms", "outbox");
            engine.setProperty("transforms.outbox.type", EngineDefaults.ROUTER_CLASS);
            configureRouter(config, engine, "outbox", warnings);
            if (exchanges) {
                defaultRouting(config, engine);
            }
            return;
        }
        engine.setProperty("transforms", chain);
        for (String t : chain.split(",")) {
            String typeKey = "transforms." + t.trim() + ".type";
            if (EngineDefaults.DEBEZIUM_ROUTER_CLASS.equals(engine.getProperty(typeKey))) {
                engine.setProperty(typeKey, EngineDefaults.ROUTER_CLASS);
                warnings.add("debezium." + typeKey + ": running " + EngineDefaults.ROUTER_CLASS
                        + " in place of Debezium's EventRouter (same output, plus AMQP message id, type and routing)");
            }
            if (EngineDefaults.ROUTER_CLASS.equals(engine.getProperty(typeKey))) {
                configureRouter(config, engine, t.trim(), warnings);
            }
        }
    }

    /**
     * The router's output is Debezium's unless asked for more; the relay asks. Its AMQP headers always: the sink
     * publishes only what carries them, and would mark every event processed without publishing it. An invalid row
     * flagged (the sink dead-letters it and the stream goes on) unless the configuration chose, as a Debezium Server file
     * naming this router may have: {@code fail} then stops at such a row, as it would there. Both are read through
     * SmallRye Config, so an environment variable counts as a choice too.
     */
    private static void configureRouter(SmallRyeConfig config, Properties engine, String transform, List<String> warnings) {
        String headersKey = "transforms." + transform + "." + EngineDefaults.ROUTER_AMQP_HEADERS;
        String headers = value(config, "debezium." + headersKey);
        if (headers != null && !"true".equalsIgnoreCase(headers.trim())) {
            warnings.add("debezium." + headersKey + "=" + headers + " is replaced by true: the relay publishes each event from the headers "
                    + "the router adds (message id, type, content type, routing), and without them would publish nothing");
        }
        engine.setProperty(headersKey, "true");
        String behaviorKey = "transforms." + transform + "." + EngineDefaults.ROUTER_INVALID_BEHAVIOR;
        String behavior = value(config, "debezium." + behaviorKey);
        engine.setProperty(behaviorKey, behavior == null || behavior.isBlank() ? EngineDefaults.ROUTER_INVALID_DEFAULT : behavior.trim());
    }

    /** The settings that decide an event's routing key; when one is given the relay adds no routing of its own. */
    private static final List<String> ROUTING_SETTINGS = List.of(SinkConfig.PREFIX + "routingKey", SinkConfig.PREFIX + "routingKey.source",
            SinkConfig.PREFIX + "routingKeyFromTopicName");

    /**
     * With the chain the relay installs, events are routed by aggregate type and event type
     * ({@code order.OrderPlaced}) unless a routing setting says otherwise: Debezium Server's sink
     * publishes every event with one static key (the empty one by default), and consumers could then
     * bind to no kind of event. A Debezium Server file names its transforms, and keeps the routing it had.
     * The columns are the router's own (its route.by.field and table.field.event.type).
     */
    private static void defaultRouting(SmallRyeConfig config, Properties engine) {
        String template = "transforms.outbox." + OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE;
        if (engine.getProperty(template) != null || ROUTING_SETTINGS.stream().anyMatch(key -> value(config, key) != null)) {
            return;
        }
        String aggregateType = engine.getProperty("transforms.outbox.route.by.field", "aggregatetype");
        String type = engine.getProperty("transforms.outbox.table.field.event.type", "type");
        engine.setProperty(template, "${" + aggregateType.trim() + "}.${" + type.trim() + "}");
    }

    private static void checkNamespaces(Set<String> names, Set<String> fileKeys, TypedReader read, List<String> warnings) {
        for (String name : names) {
            if (name.startsWith(SinkConfig.PREFIX)) {
                if (!name.startsWith(Settings.SINK_CONNECTION) && !Settings.SINK.names().contains(name)) {
                    read.problem(name + " is not a setting of the RabbitMQ sink" + suggestion(name, Settings.SINK.names())
                            + " (`outbox-relay settings` lists them; connection.* goes to amqp-client)");
                }
            }
            else if (name.startsWith(RELAY_PREFIX)) {
                if (!Settings.RELAY.names().contains(name)) {
                    read.problem(name + " is not a relay setting" + suggestion(name, Settings.RELAY.names()) + " (`outbox-relay settings` lists them)");
                }
            }
            else if (name.startsWith(Settings.STREAM_PREFIX)) {
                if (!Settings.STREAM.names().contains(name)) {
                    read.problem(name + " is not a setting of the RabbitMQ Streams sink" + suggestion(name, Settings.STREAM.names())
                            + " (`outbox-relay settings` lists them)");
                }
            }
            else if (name.startsWith("debezium.sink.") && !name.equals(SINK_TYPE)) {
                read.problem(name + " belongs to another sink; outbox-relay has debezium.sink.rabbitmq.* and debezium.sink.rabbitmqstream.*");
            }
            else if (IGNORED_PREFIXES.stream().anyMatch(name::startsWith)) {
                warnings.add(name + " has no effect in outbox-relay and is ignored");
            }
            else if (fileKeys.contains(name) && !name.startsWith(SOURCE_PREFIX) && !name.startsWith(TRANSFORMS) && !name.startsWith(PREDICATES)
                    && !name.equals(SINK_TYPE)) {
                // Not an error: a file may hold helper keys for ${...} references.
                warnings.add(name + " is not a known setting and is ignored unless a ${" + name + "} refers to it (namespaces: debezium.source.*, "
                        + "debezium.transforms*, debezium.predicates*, debezium.sink.type, debezium.sink.rabbitmq.*, debezium.sink.rabbitmqstream.*, relay.*)");
            }
        }
    }

    /**
     * Warns about each {@code debezium.source.*} key Debezium does not know, naming the key it
     * probably meant: Debezium itself ignores unknown keys without a word, so a typo such as
     * {@code snapshot.mod} would otherwise leave the default in force unnoticed.
     */
    private static void checkDebeziumKeys(Set<String> names, Properties engine, List<String> warnings) {
        List<String> converters = DebeziumKeys.list(engine.getProperty("converters"));
        for (String name : names) {
            if (name.startsWith(SOURCE_PREFIX)) {
                String why = DEBEZIUM_KEYS.unknown(name.substring(SOURCE_PREFIX.length()), converters);
                if (why != null) {
                    warnings.add(name + " " + why);
                }
            }
        }
    }

    /** A required key that is missing, and a key that is present but unknown and close to it: the typo that was probably meant. */
    private static String nearMiss(String required, Set<String> names) {
        Set<String> unknown = new TreeSet<>();
        for (String name : names) {
            if (name.startsWith(SOURCE_PREFIX) && DEBEZIUM_KEYS.unknown(name.substring(SOURCE_PREFIX.length()), List.of()) != null) {
                unknown.add(name.substring(SOURCE_PREFIX.length()));
            }
        }
        String typo = Suggestions.closest(required, unknown);
        return typo == null ? "" : " (" + SOURCE_PREFIX + typo + " is set: a typo for " + SOURCE_PREFIX + required + "?)";
    }

    /**
     * A secret whose {@code ${NAME}} did not resolve would otherwise be sent as the literal text
     * "${NAME}" (the loader keeps unresolved placeholders for Debezium's own, such as
     * {@code ${routedByValue}}): for a password that is never what was meant.
     */
    private static void checkSecrets(SmallRyeConfig config, Set<String> names, TypedReader read) {
        Set<String> secrets = new TreeSet<>();
        for (String name : names) {
            if (isSecret(name)) {
                secrets.add(name);
            }
        }
        for (String key : List.of(SOURCE_PREFIX + "database.password", SinkConfig.PREFIX + "connection.password")) {
            if (value(config, key) != null) {
                secrets.add(key);
            }
        }
        for (String key : secrets) {
            String raw = raw(config, key);
            if (raw == null) {
                continue;
            }
            for (String missing : Placeholders.unresolved(raw, name -> raw(config, name))) {
                read.problem(key + " refers to ${" + missing + "}, which is not set: set the environment variable " + missing
                        + " (or a -D" + missing + "=... system property, a line " + missing + "=... in the file, or a file named " + missing
                        + " in the secrets directory)");
            }
        }
    }

    private static boolean isSecret(String key) {
        String k = key.toLowerCase(Locale.ROOT);
        return k.endsWith("password") || k.endsWith("secret") || k.endsWith("passphrase");
    }

    private static String suggestion(String name, Set<String> known) {
        String near = Suggestions.closest(name, known);
        return near == null ? "" : "; did you mean " + near + "?";
    }

    /** The value of {@code key} with placeholders expanded where they resolve and kept verbatim where not. */
    static String value(SmallRyeConfig config, String key) {
        String raw = raw(config, key);
        return raw == null ? null : Placeholders.expand(raw, name -> raw(config, name));
    }

    /** The value of {@code key} as written, placeholders and all, or null. */
    private static String raw(SmallRyeConfig config, String key) {
        ConfigValue v = config.getConfigValue(key);
        return v == null ? null : v.getRawValue();
    }
}
