package io.outboxrelay.offsetstore;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.SQLException;
import java.time.Duration;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.regex.Pattern;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Type;
import org.apache.kafka.common.config.ConfigException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code offset.storage.postgres.*} settings of {@link PostgresOffsetBackingStore}, read from the
 * engine's (worker's) properties.
 */
public final class PostgresOffsetStoreConfig {

    private static final Logger LOG = LoggerFactory.getLogger(PostgresOffsetStoreConfig.class);

    public static final String PREFIX = "offset.storage.postgres.";
    public static final String URL = PREFIX + "url";
    public static final String USER = PREFIX + "user";
    public static final String PASSWORD = PREFIX + "password";
    public static final String PASSWORD_FILE = PREFIX + "password.file";
    public static final String TABLE = PREFIX + "table";
    public static final String NAMESPACE = PREFIX + "namespace";
    public static final String RETRY_TIMEOUT_MS = PREFIX + "retry.timeout.ms";
    public static final String RETRY_BACKOFF_INITIAL_MS = PREFIX + "retry.backoff.initial.ms";
    public static final String RETRY_BACKOFF_MAX_MS = PREFIX + "retry.backoff.max.ms";
    public static final String CONNECT_TIMEOUT_MS = PREFIX + "connect.timeout.ms";
    public static final String SOCKET_TIMEOUT_MS = PREFIX + "socket.timeout.ms";
    public static final String FENCING_TABLE = PREFIX + "fencing.table";
    public static final String FENCING_EPOCH = PREFIX + "fencing.epoch";
    /** Keys under this prefix go to the JDBC driver as they are, e.g. {@code driver.sslmode=verify-full}: settings that a URL should not carry (an sslpassword). */
    public static final String DRIVER_PREFIX = PREFIX + "driver.";

    public static final String DEFAULT_TABLE = "outbox_relay_offsets";
    /** The engine's name, which the namespace defaults to. */
    static final String ENGINE_NAME = "name";

    /** Unquoted PostgreSQL identifiers, optionally schema-qualified; anything else is refused, never spliced into SQL. */
    private static final Pattern TABLE_NAME = Pattern.compile("([A-Za-z_][A-Za-z0-9_$]{0,62}\\.)?[A-Za-z_][A-Za-z0-9_$]{0,62}");

    public static final ConfigDef CONFIG_DEF = new ConfigDef()
            .define(URL, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, Importance.HIGH,
                    "JDBC URL of the PostgreSQL database that holds the offset table, e.g. jdbc:postgresql://db:5432/app.")
            .define(USER, Type.STRING, null, Importance.HIGH, "Role used to read and write the offset table.")
            .define(PASSWORD, Type.PASSWORD, null, Importance.HIGH, "Password of that role.")
            .define(PASSWORD_FILE, Type.STRING, null, Importance.MEDIUM,
                    "File whose content (trailing newline removed) is the password; wins over " + PASSWORD + ". Read again at every "
                            + "connection, so a password rotated in the file (a mounted Kubernetes Secret) needs no restart.")
            .define(TABLE, Type.STRING, DEFAULT_TABLE, Importance.MEDIUM,
                    "Offset table, optionally schema-qualified (schema.table). Created if missing.")
            .define(NAMESPACE, Type.STRING, null, Importance.MEDIUM,
                    "Rows this store reads and writes; several engines can share one table under different namespaces. Defaults to the engine name.")
            .define(RETRY_TIMEOUT_MS, Type.LONG, 30_000L, ConfigDef.Range.atLeast(0), Importance.LOW,
                    "How long a write or read is retried after a transient failure (lost connection, server restarting) before it fails.")
            .define(RETRY_BACKOFF_INITIAL_MS, Type.LONG, 100L, ConfigDef.Range.atLeast(1), Importance.LOW,
                    "First pause between retries; it doubles up to " + RETRY_BACKOFF_MAX_MS + ".")
            .define(RETRY_BACKOFF_MAX_MS, Type.LONG, 5_000L, ConfigDef.Range.atLeast(1), Importance.LOW,
                    "Longest pause between retries.")
            .define(CONNECT_TIMEOUT_MS, Type.LONG, 10_000L, ConfigDef.Range.atLeast(1), Importance.LOW,
                    "How long opening a connection (TCP connect and log-in) may take.")
            .define(SOCKET_TIMEOUT_MS, Type.LONG, 30_000L, ConfigDef.Range.atLeast(1), Importance.LOW,
                    "The longest wait for one answer from the server: a half-open connection fails after it and is opened again. "
                            + "TCP keep-alive is on as well.")
            .define(FENCING_TABLE, Type.STRING, null, Importance.LOW,
                    "A lease table (see LeaseTable) whose row for the namespace must carry " + FENCING_EPOCH + " for a write to commit: "
                            + "checked in the write's own transaction, so a writer that lost its lease stores nothing. Unset: no fencing.")
            .define(FENCING_EPOCH, Type.LONG, -1L, Importance.LOW, "The epoch this writer holds the lease with (with " + FENCING_TABLE + ").");

    private final String url;
    private final String user;
    private final String password;
    private final Path passwordFile;
    private final String table;
    private final String namespace;
    private final Duration retryTimeout;
    private final Duration backoffInitial;
    private final Duration backoffMax;
    private final Duration connectTimeout;
    private final Duration socketTimeout;
    private final Map<String, String> driverProperties;
    private final String fencingTable;
    private final long fencingEpoch;

    private PostgresOffsetStoreConfig(String url, String user, String password, Path passwordFile, String table, String namespace,
                                      Duration retryTimeout, Duration backoffInitial, Duration backoffMax, Duration connectTimeout,
                                      Duration socketTimeout, Map<String, String> driverProperties, String fencingTable, long fencingEpoch) {
        this.url = url;
        this.user = user;
        this.password = password;
        this.passwordFile = passwordFile;
        this.table = table;
        this.namespace = namespace;
        this.retryTimeout = retryTimeout;
        this.backoffInitial = backoffInitial;
        this.backoffMax = backoffMax;
        this.connectTimeout = connectTimeout;
        this.socketTimeout = socketTimeout;
        this.driverProperties = Map.copyOf(driverProperties);
        this.fencingTable = fencingTable;
        this.fencingEpoch = fencingEpoch;
    }

    /**
     * Reads the settings from the worker's original properties.
     *
     * @throws ConfigException naming the key at fault
     */
    public static PostgresOffsetStoreConfig from(Map<String, ?> originals) {
        Map<String, Object> parsed = CONFIG_DEF.parse(originals);
        String table = (String) parsed.get(TABLE);
        if (!TABLE_NAME.matcher(table).matches()) {
            throw new ConfigException(TABLE, table, "must be a plain table name, optionally schema-qualified (letters, digits, _ and $)");
        }
        String url = (String) parsed.get(URL);
        if (!url.startsWith("jdbc:postgresql:")) {
            throw new ConfigException(URL, url, "must be a PostgreSQL JDBC URL (jdbc:postgresql://host:port/database)");
        }
        String fencingTable = (String) parsed.get(FENCING_TABLE);
        if (fencingTable != null && !TABLE_NAME.matcher(fencingTable).matches()) {
            throw new ConfigException(FENCING_TABLE, fencingTable, "must be a plain table name, optionally schema-qualified (letters, digits, _ and $)");
        }
        String namespace = (String) parsed.get(NAMESPACE);
        if (namespace == null || namespace.isBlank()) {
            Object engineName = originals.get(ENGINE_NAME);
            if (engineName == null || engineName.toString().isBlank()) {
                throw new ConfigException(NAMESPACE, null, "is required when the engine has no 'name'");
            }
            namespace = engineName.toString();
        }
        String file = (String) parsed.get(PASSWORD_FILE);
        Path passwordFile = file == null || file.isBlank() ? null : Path.of(file);
        if (passwordFile != null) {
            try {
                readPassword(passwordFile);
            }
            catch (IOException e) {
                throw new ConfigException(PASSWORD_FILE, file, "cannot be read: " + e);
            }
        }
        org.apache.kafka.common.config.types.Password password = (org.apache.kafka.common.config.types.Password) parsed.get(PASSWORD);
        return new PostgresOffsetStoreConfig(url, (String) parsed.get(USER), password == null ? null : password.value(), passwordFile, table, namespace,
                Duration.ofMillis((Long) parsed.get(RETRY_TIMEOUT_MS)),
                Duration.ofMillis((Long) parsed.get(RETRY_BACKOFF_INITIAL_MS)),
                Duration.ofMillis((Long) parsed.get(RETRY_BACKOFF_MAX_MS)),
                Duration.ofMillis((Long) parsed.get(CONNECT_TIMEOUT_MS)),
                Duration.ofMillis((Long) parsed.get(SOCKET_TIMEOUT_MS)),
                driverProperties(originals),
                fencingTable,
                (Long) parsed.get(FENCING_EPOCH));
    }

    private static Map<String, String> driverProperties(Map<String, ?> originals) {
        Map<String, String> driver = new TreeMap<>();
        originals.forEach((k, v) -> {
            if (k.startsWith(DRIVER_PREFIX) && v != null) {
                driver.put(k.substring(DRIVER_PREFIX.length()), v.toString());
            }
        });
        return driver;
    }

    private static String readPassword(Path file) throws IOException {
        return Files.readString(file, StandardCharsets.UTF_8).stripTrailing();
    }

    public String url() {
        return url;
    }

    public String user() {
        return user;
    }

    /**
     * A new connection to the store's database, as the store opens its own: the same URL, role,
     * password (a file read again now), time-outs and driver properties. The lease table lives in
     * this database too, so the relay's lease keeper connects here the same way.
     *
     * @param socketTimeout the longest wait for one answer (the lease keeper's is shorter than the store's)
     */
    public Connection connect(String applicationName, Duration socketTimeout) throws SQLException {
        Properties props = new Properties();
        if (user != null) {
            props.setProperty("user", user);
        }
        String pw;
        try {
            pw = password();
        }
        catch (IOException e) {
            throw new SQLException("cannot read " + PASSWORD_FILE + ": " + e.getMessage(), "08004", e);
        }
        if (pw != null) {
            props.setProperty("password", pw);
        }
        props.setProperty("ApplicationName", applicationName);
        // Defaults that the URL's own parameters override: a half-open connection must fail, not hang a flush.
        props.setProperty("connectTimeout", Long.toString(seconds(connectTimeout)));
        props.setProperty("loginTimeout", Long.toString(seconds(connectTimeout)));
        props.setProperty("socketTimeout", Long.toString(seconds(socketTimeout)));
        props.setProperty("tcpKeepAlive", "true");
        driverProperties.forEach(props::setProperty);
        // The URL without its parameters: one of them could be a password.
        String where = url.replaceFirst("\\?.*", "");
        Connection connection;
        try {
            connection = DriverManager.getConnection(url, props);
        }
        catch (SQLException e) {
            LOG.warn("PostgreSQL connection refused for {}: {} as {}: {}", applicationName, where, user, e.getMessage());
            if ("28P01".equals(e.getSQLState()) && passwordFile != null) {
                throw new SQLException(e.getMessage() + " (the password is read again from " + passwordFile + " at every connection)", e.getSQLState(), e);
            }
            throw e;
        }
        LOG.info("PostgreSQL connection opened for {}: {} as {}, sslmode={}", applicationName, where, user, driverProperties.getOrDefault("sslmode", "prefer"));
        return connection;
    }

    /** pgjdbc takes whole seconds, and 0 would mean no limit at all. */
    private static long seconds(Duration d) {
        return Math.max(1, (d.toMillis() + 999) / 1000);
    }

    /** The password for a new connection: the file's content now when one is given, else the fixed value. */
    String password() throws IOException {
        return passwordFile != null ? readPassword(passwordFile) : password;
    }

    /** {@code password.file}, or null. */
    public Path passwordFile() {
        return passwordFile;
    }

    public String table() {
        return table;
    }

    public String namespace() {
        return namespace;
    }

    public Duration retryTimeout() {
        return retryTimeout;
    }

    public Duration backoffInitial() {
        return backoffInitial;
    }

    public Duration backoffMax() {
        return backoffMax;
    }

    public Duration connectTimeout() {
        return connectTimeout;
    }

    public Duration socketTimeout() {
        return socketTimeout;
    }

    /** The lease table offset writes are fenced by, or null. */
    public String fencingTable() {
        return fencingTable;
    }

    public long fencingEpoch() {
        return fencingEpoch;
    }

    /** JDBC driver properties given as {@code offset.storage.postgres.driver.*}. */
    public Map<String, String> driverProperties() {
        return driverProperties;
    }
}
