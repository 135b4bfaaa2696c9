package io.outboxrelay.check;

import java.io.IOException;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicReference;

import javax.net.ssl.SSLSession;
import javax.net.ssl.SSLSocket;
import java.util.Properties;
import java.util.concurrent.TimeoutException;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.ConnectionFactoryConfigurator;
import com.rabbitmq.stream.Environment;

import io.outboxrelay.audit.ConnectionAudit;
import io.outboxrelay.config.BrokerTls;
import io.outboxrelay.config.DatabaseSettings;
import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.RelaySettings;
import io.outboxrelay.config.SinkConfig;
import io.outboxrelay.config.StreamSinkConfig;
import io.outboxrelay.offsetstore.LeaseTable;
import io.outboxrelay.offsetstore.PostgresOffsetBackingStore;
import io.outboxrelay.offsetstore.PostgresOffsetStoreConfig;
import io.outboxrelay.sink.amqp.AmqpConnectionFactory;
import io.outboxrelay.sink.stream.StreamEnvironments;
import io.outboxrelay.sink.stream.StreamProducerClaim;
import io.outboxrelay.source.OutboxPublication;
import io.outboxrelay.source.ResumeCheck;
import io.outboxrelay.source.ShardSets;
import io.outboxrelay.source.SlotStatus;
import io.outboxrelay.source.SourceInspector;
import io.outboxrelay.source.StoredOffset;

/**
 * Tests each prerequisite of a configured relay against the real servers, without changing
 * anything, and says for each what to do when it fails.
 */
public final class Preflight {

    private final RelayConfig config;
    private final List<CheckResult> results = new ArrayList<>();

    public Preflight(RelayConfig config) {
        this.config = config;
    }

    public List<CheckResult> run() {
        results.add(CheckResult.ok("configuration is valid (relay '" + config.name() + "', slot " + config.slotName()
                + (config.relay().shard().sharded() ? ", " + config.relay().shard() + ", row filter " + config.shardFilter().expression() : "") + ")"));
        checkPostgres();
        checkShardSets();
        if (config.streams()) {
            checkStreams();
        }
        else {
            checkBroker();
        }
        return results;
    }

    private void checkPostgres() {
        DatabaseSettings db = config.database();
        try (SourceInspector source = new SourceInspector(db, "outbox-relay check")) {
            String walLevel = source.walLevel();
            results.add(CheckResult.ok("PostgreSQL reachable at " + db.host() + ":" + db.port() + "/" + db.database() + " as " + db.user()));
            results.add(tls(db, source.tls()));
            results.add("logical".equals(walLevel) ? CheckResult.ok("wal_level=logical")
                    : CheckResult.fail("wal_level=" + walLevel + ", logical decoding needs wal_level=logical: set it in postgresql.conf "
                            + "(ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL"));
            results.add(source.canReplicate() ? CheckResult.ok("role " + db.user() + " may replicate")
                    : CheckResult.fail("role " + db.user() + " lacks REPLICATION: ALTER ROLE " + db.user() + " WITH REPLICATION;"));
            for (String table : config.outboxTables()) {
                checkTable(source, table);
            }
            if (!config.streams()) {
                results.add(RoutingCheck.routing(config, source));
            }
            checkPublication(source);
            checkRelayTables(source);
            checkPublicationColumns(source);
            checkRetention(source);
            checkSlot(source);
        }
        catch (SQLException e) {
            results.add(CheckResult.fail("PostgreSQL at " + db.host() + ":" + db.port() + "/" + db.database() + " as " + db.user()
                    + " refused: " + e.getMessage() + " — check debezium.source.database.* and that the server runs"));
        }
    }

    /**
     * The connection's TLS facts. Whether the server was verified follows from pgjdbc's sslmode:
     * verify-full checks the certificate chain and the host name, verify-ca the chain only, the
     * others nothing. Off loopback anything short of verify-full is a warning.
     */
    static CheckResult tls(DatabaseSettings db, SourceInspector.TlsFacts tls) {
        String mode = db.sslMode();
        String verified = switch (mode) {
            case "verify-full" -> "server certificate and host name verified";
            case "verify-ca" -> "server certificate verified, host name not";
            default -> "server not verified";
        };
        String facts = tls.ssl() ? "TLS (" + tls.protocol() + ", " + tls.cipher() + "), " + verified + " (sslmode=" + mode + ")"
                : "not TLS (sslmode=" + mode + ")";
        if (!"verify-full".equals(mode) && !loopback(db.host())) {
            return CheckResult.warn("PostgreSQL connection to " + db.host() + " is " + facts + ": anyone on the path could read or pose as the "
                    + "server; set debezium.source.database.sslmode=verify-full and debezium.source.database.sslrootcert");
        }
        return CheckResult.ok("PostgreSQL connection is " + facts);
    }

    /** The broker connection's TLS facts: the negotiated protocol and cipher, and what the settings had verified. */
    static CheckResult brokerTls(SinkConfig sink, String host, SSLSession session) {
        Map<String, String> c = BrokerTls.verifiedByDefault(sink.connection());
        if (!BrokerTls.enabled(c)) {
            return loopback(host) ? CheckResult.ok("RabbitMQ connection is not TLS (loopback)")
                    : CheckResult.warn("RabbitMQ connection to " + host + " is not TLS: credentials and events cross the network in clear; set "
                            + "debezium.sink.rabbitmq.connection.ssl.enabled=true (and connection.port to the TLS listener, usually 5671)");
        }
        boolean certificate = !"false".equalsIgnoreCase(c.get(ConnectionFactoryConfigurator.SSL_VALIDATE_SERVER_CERTIFICATE))
                || c.get(ConnectionFactoryConfigurator.SSL_TRUST_STORE) != null || c.get(ConnectionFactoryConfigurator.SSL_KEY_STORE) != null;
        boolean hostName = "true".equalsIgnoreCase(c.get(ConnectionFactoryConfigurator.SSL_VERIFY_HOSTNAME));
        String verified = certificate && hostName ? "server certificate and host name verified"
                : certificate ? "server certificate verified, host name not" : "server not verified";
        String facts = "TLS (" + (session == null ? "protocol unknown" : session.getProtocol() + ", " + session.getCipherSuite()) + "), " + verified
                + (sink.saslExternal() ? ", client certificate (EXTERNAL)" : "");
        return certificate && hostName ? CheckResult.ok("RabbitMQ connection is " + facts)
                : CheckResult.warn("RabbitMQ connection is " + facts + ": see the warnings above");
    }

    private static boolean loopback(String host) {
        return host.equals("localhost") || host.startsWith("127.") || host.equals("::1") || host.startsWith("/");
    }

    private void checkTable(SourceInspector source, String table) throws SQLException {
        if (!table.matches("[A-Za-z0-9_$.]+")) {
            results.add(CheckResult.warn("table.include.list entry '" + table + "' is a pattern; not checked"));
            return;
        }
        SourceInspector.TableAccess access = source.table(table);
        if (!access.exists()) {
            results.add(CheckResult.fail("outbox table " + table + " does not exist: create it (deploy/sql/outbox.sql) or fix "
                    + "debezium.source.table.include.list"));
        }
        else if (!access.readable()) {
            results.add(CheckResult.fail("outbox table " + table + " exists but " + config.database().user()
                    + " may not read it: GRANT SELECT ON " + table + " TO " + config.database().user() + ";"));
        }
        else {
            results.add(CheckResult.ok("outbox table " + table + " exists and is readable"));
        }
    }

    private void checkPublication(SourceInspector source) throws SQLException {
        String name = config.publicationName();
        String mode = config.engineProperties().getProperty("publication.autocreate.mode", "all_tables");
        SourceInspector.PublicationInfo publication = source.publication(name);
        if (publication == null) {
            String create = "CREATE PUBLICATION " + name + " FOR TABLE " + String.join(", ", config.outboxTables()) + " WITH (publish = 'insert');";
            if ("disabled".equals(mode)) {
                results.add(CheckResult.fail("publication " + name + " does not exist and publication.autocreate.mode=disabled: " + create));
            }
            else if (!source.canCreatePublication(config.outboxTables())) {
                results.add(CheckResult.fail("publication " + name + " does not exist and " + config.database().user() + " may not create it (only the "
                        + "outbox table's owner may): run, as the owner, " + create + " and set debezium.source.publication.autocreate.mode=disabled"));
            }
            else {
                results.add(CheckResult.ok("publication " + name + " does not exist yet; the relay creates it (publication.autocreate.mode=" + mode + ")"));
            }
            return;
        }
        if (publication.allTables()) {
            results.add("filtered".equals(mode)
                    ? CheckResult.fail("publication " + name + " is FOR ALL TABLES, which publication.autocreate.mode=filtered refuses: drop it or name another publication.name")
                    : CheckResult.ok("publication " + name + " publishes all tables"));
            return;
        }
        List<String> missing = config.outboxTables().stream().filter(t -> !publication.tables().contains(t)).toList();
        String tables = String.join(",", publication.tables());
        results.add(missing.isEmpty() ? CheckResult.ok("publication " + name + " covers " + tables)
                : CheckResult.warn("publication " + name + " covers [" + tables + "] but not " + missing
                        + ("filtered".equals(mode) ? "; the relay alters it at start (it must own the publication)" : "; add them with ALTER PUBLICATION")));
    }

    /**
     * The offset and dead-letter tables: present with the privileges the relay uses, or creatable.
     * Each failure names the GRANT (or the script, deploy/sql/relay-role.sql) that mends it.
     */
    private void checkRelayTables(SourceInspector source) throws SQLException {
        String user = config.database().user();
        Properties engine = config.engineProperties();
        if (PostgresOffsetBackingStore.class.getName().equals(engine.getProperty("offset.storage"))
                && config.database().jdbcUrl().equals(engine.getProperty(PostgresOffsetStoreConfig.URL))
                && user.equals(engine.getProperty(PostgresOffsetStoreConfig.USER, user))) {
            String table = engine.getProperty(PostgresOffsetStoreConfig.TABLE, PostgresOffsetStoreConfig.DEFAULT_TABLE);
            checkRelayTable(source, table, "offset table", "offset.storage.postgres.table", List.of("SELECT", "INSERT", "UPDATE", "DELETE"), null);
            if (config.relay().leadership().standby()) {
                // The lease lives beside the offsets; checked where that is the source database, as the offset table is.
                LeaseTable leases = new LeaseTable(config.relay().leadership().table());
                List<String> all = List.of("SELECT", "INSERT", "UPDATE", "DELETE");
                checkRelayTable(source, leases.table(), "lease table", "relay.leader.table", all, null);
                checkRelayTable(source, leases.membersTable(), "lease members table", "relay.leader.table", all, null);
            }
            if (config.streams()) {
                checkRelayTable(source, StreamProducerClaim.tableBeside(table), "stream producer table", "offset.storage.postgres.table",
                        List.of("SELECT", "INSERT"), null);
                String conflict = StreamProducerClaim.conflict(config, "outbox-relay check");
                results.add(conflict != null ? CheckResult.fail(conflict)
                        : CheckResult.ok("stream producer '" + config.stream().producerName() + "' is no other relay's"));
            }
        }
        String deadLetters = config.relay().deadLetterTable();
        checkRelayTable(source, deadLetters, "dead-letter table", "relay.dead-letter.table", List.of("SELECT", "INSERT", "UPDATE"), deadLetters + "_id_seq");
    }

    private void checkRelayTable(SourceInspector source, String table, String what, String setting, List<String> privileges, String sequence)
            throws SQLException {
        String user = config.database().user();
        List<String> missing = source.missingPrivileges(table, privileges);
        if (missing == null) {
            results.add(source.canCreateTable(table) ? CheckResult.ok(what + " " + table + " does not exist yet; the relay creates it (" + setting + ")")
                    : CheckResult.fail(what + " " + table + " does not exist and " + user + " may not create it: create it as deploy/sql/relay-role.sql "
                            + "does, or GRANT CREATE ON SCHEMA " + (table.contains(".") ? table.substring(0, table.indexOf('.')) : "public") + " TO " + user + ";"));
            return;
        }
        if (!missing.isEmpty()) {
            results.add(CheckResult.fail(what + " " + table + " exists but " + user + " lacks " + String.join(", ", missing) + ": GRANT "
                    + String.join(", ", missing) + " ON " + table + " TO " + user + ";"));
            return;
        }
        if (sequence != null && !source.canUseSequence(sequence)) {
            results.add(CheckResult.fail(what + " " + table + " is writable but its id sequence is not: GRANT USAGE ON SEQUENCE " + sequence + " TO " + user + ";"));
            return;
        }
        results.add(CheckResult.ok(what + " " + table + " exists and " + user + " may " + String.join(", ", privileges).toLowerCase(Locale.ROOT)));
    }

    private void checkPublicationColumns(SourceInspector source) throws SQLException {
        RelayConfig.PublicationColumns columns = config.publicationColumns();
        if (columns.names().isEmpty()) {
            return;
        }
        List<String> problems = source.columnListProblems(new OutboxPublication(config.database(), config.publicationName(), config.outboxTables(), columns,
                config.shardFilter()));
        problems.forEach(p -> results.add(CheckResult.fail(p)));
        if (problems.isEmpty()) {
            results.add(CheckResult.ok("publication " + config.publicationName() + " will publish only " + String.join(", ", columns.names())
                    + (columns.derived() ? " (the columns the router reads) and the primary key" : "") + " of " + String.join(", ", config.outboxTables())
                    + (columns.derived() ? " (relay.publication.columns=* sends all)" : " (relay.publication.columns)")));
        }
    }

    /** With relay.outbox.retention.ms: each outbox table has the age column and the role may delete from it. */
    private void checkRetention(SourceInspector source) throws SQLException {
        RelaySettings.Retention retention = config.relay().retention();
        if (!retention.enabled()) {
            return;
        }
        String user = config.database().user();
        for (String table : config.outboxTables()) {
            List<String> missing = source.missingPrivileges(table, List.of("DELETE"));
            if (missing == null) {
                continue;
            }
            if (!source.hasColumn(table, retention.column())) {
                results.add(CheckResult.fail("outbox table " + table + " has no column " + retention.column() + ": set relay.outbox.retention.column "
                        + "to the column that says how old a row is"));
            }
            else if (!missing.isEmpty()) {
                results.add(CheckResult.fail("outbox retention (relay.outbox.retention.ms) deletes from " + table + " but " + user
                        + " may not: GRANT DELETE ON " + table + " TO " + user + ";"));
            }
            else {
                results.add(CheckResult.ok("outbox retention deletes rows of " + table + " older than " + retention.age().toMillis()
                        + " ms by " + retention.column() + ", once behind the stored offset"));
            }
        }
    }

    private void checkSlot(SourceInspector source) throws SQLException {
        String name = config.slotName();
        SlotStatus slot = source.slot(name);
        if (slot == null) {
            results.add(CheckResult.ok("replication slot " + name + " does not exist yet; the relay creates it"));
        }
        else if (!"pgoutput".equals(slot.plugin()) && "pgoutput".equals(config.engineProperties().getProperty("plugin.name"))) {
            results.add(CheckResult.fail("replication slot " + name + " uses plugin " + slot.plugin() + ", not pgoutput: drop it or set debezium.source.slot.name"));
        }
        else if (!config.database().database().equals(slot.database())) {
            results.add(CheckResult.fail("replication slot " + name + " belongs to database " + slot.database() + ": set another debezium.source.slot.name"));
        }
        else if (slot.active()) {
            results.add(CheckResult.fail("replication slot " + name + " is in use by " + slot.holder()
                    + "; only one relay may stream from a slot: stop that client, or give this relay its own relay.name"));
        }
        else if ("lost".equals(slot.walStatus())) {
            results.add(CheckResult.fail("replication slot " + name + " is lost (max_slot_wal_keep_size exceeded): events were dropped by PostgreSQL; "
                    + "drop the slot and decide how to backfill"));
        }
        else {
            results.add(CheckResult.ok("replication slot " + name + " exists (" + slot.plugin() + ") and is free"));
        }
        if (slot == null || config.database().database().equals(slot.database())) {
            checkResume(source, slot);
        }
    }

    /** What a start would not send: the rows already in the outbox on a first start, or what lies between the stored offset and a slot ahead of it. */
    private void checkResume(SourceInspector source, SlotStatus slot) throws SQLException {
        StoredOffset stored = StoredOffset.of(config);
        ResumeCheck.Result resume = ResumeCheck.of(source, config, slot, stored);
        resume.lines().forEach(line -> results.add(CheckResult.warn(line)));
        if (resume.lines().isEmpty() && stored != null) {
            results.add(CheckResult.ok("the relay resumes from the stored offset " + stored.lsnText()));
        }
    }

    private void checkBroker() {
        SinkConfig sink = config.sink();
        ConnectionFactory factory = AmqpConnectionFactory.forSink(sink);
        factory.setConnectionTimeout(5_000);
        String where = factory.getHost() + ":" + factory.getPort() + factory.getVirtualHost();
        AtomicReference<SSLSession> session = new AtomicReference<>();
        if (factory.isSSL()) {
            // Added to, not replaced: amqp-client's host-name verification is itself a socket configurator.
            factory.setSocketConfigurator(factory.getSocketConfigurator().andThen(socket -> {
                if (socket instanceof SSLSocket ssl) {
                    ssl.addHandshakeCompletedListener(e -> session.set(e.getSession()));
                }
            }));
        }
        try (com.rabbitmq.client.Connection connection = ConnectionAudit.openBroker(factory, "outbox-relay check")) {
            results.add(CheckResult.ok("RabbitMQ reachable at " + where + " as " + (sink.saslExternal() ? "the client certificate's user (EXTERNAL)"
                    : factory.getUsername())));
            results.add(brokerTls(sink, factory.getHost(), session.get()));
            if (sink.exchange().isEmpty()) {
                results.add(CheckResult.ok("exchange: taken from the router (exchange.template) or the topic name, per event; not checked"));
                return;
            }
            try (Channel channel = connection.createChannel()) {
                channel.exchangeDeclarePassive(sink.exchange());
                results.add(CheckResult.ok("exchange '" + sink.exchange() + "' exists"));
            }
            catch (IOException e) {
                results.add(CheckResult.fail("exchange '" + sink.exchange() + "' does not exist on " + where
                        + ": declare it (durable), or fix debezium.sink.rabbitmq.exchange"));
                return;
            }
            CheckResult constantKey = RoutingCheck.constantKey(config, connection);
            if (constantKey != null) {
                results.add(constantKey);
            }
        }
        catch (IOException | TimeoutException e) {
            results.add(CheckResult.fail("RabbitMQ at " + where + " as " + factory.getUsername() + " refused: "
                    + (e.getMessage() != null ? e.getMessage() : e.getClass().getSimpleName())
                    + " — check debezium.sink.rabbitmq.connection.* and that the broker runs"));
        }
    }

    /** The stream listener, the stream (or super stream) and TLS, for {@code debezium.sink.type=rabbitmqstream}. */
    private void checkStreams() {
        StreamSinkConfig stream = config.stream();
        String where = stream.host() + ":" + stream.port() + " (vhost " + stream.virtualHost() + ")";
        try (Environment env = StreamEnvironments.open(stream, "outbox-relay check")) {
            results.add(CheckResult.ok("RabbitMQ Streams reachable at " + where + " as " + stream.username()));
            if (!stream.tls().enabled()) {
                results.add(loopback(stream.host()) ? CheckResult.ok("stream connection is not TLS (loopback)")
                        : CheckResult.warn("stream connection to " + stream.host() + " is not TLS: credentials and events cross the network in clear; set "
                                + StreamSinkConfig.PREFIX + "tls.enable=true (and port to the TLS stream listener, usually 5551)"));
            }
            else {
                results.add(stream.tls().hostnameVerification() ? CheckResult.ok("stream connection is TLS, server certificate and host name verified")
                        : CheckResult.warn("stream connection is TLS, server certificate verified, host name not (" + StreamSinkConfig.PREFIX
                                + "tls.hostname.verification=false)"));
            }
            String name = stream.stream();
            if (name == null) {
                results.add(CheckResult.ok("stream: the topic name per event (" + StreamSinkConfig.PREFIX + "stream unset); each is created when first used"));
                return;
            }
            String kind = stream.superStream() ? "super stream '" : "stream '";
            if (StreamEnvironments.exists(env, stream, name)) {
                results.add(CheckResult.ok(kind + name + "' exists; producer '" + stream.producerName() + "' de-duplicates what is published again"));
                return;
            }
            // Made now, as the relay would at its start: whether it can be made is what matters, and asking is making.
            try {
                StreamEnvironments.create(env, stream, name);
                results.add(CheckResult.ok(kind + name + "' did not exist and was created, as the relay would at start"));
            }
            catch (RuntimeException e) {
                results.add(CheckResult.fail(kind + name + "' does not exist and cannot be created as " + stream.username() + " (" + e.getMessage()
                        + "): create it, or grant the configure permission on it"
                        + (stream.superStream() ? "; super streams need RabbitMQ 3.11+" : "")));
            }
        }
        catch (RuntimeException e) {
            results.add(CheckResult.fail(StreamEnvironments.explain(stream, e)));
        }
    }

    /** Other sets of shards of this relay name that have stored offsets: the relay would refuse to start beside them. */
    private void checkShardSets() {
        try {
            String conflict = ShardSets.conflict(config, "outbox-relay check");
            if (conflict != null) {
                results.add(CheckResult.fail(conflict));
            }
        }
        catch (SQLException e) {
            // Reported by the offset store's own line above.
        }
    }
}
