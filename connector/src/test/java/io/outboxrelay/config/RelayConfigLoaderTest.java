package io.outboxrelay.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Properties;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import io.outboxrelay.credentials.PasswordFilePlugin;

class RelayConfigLoaderTest {

    @TempDir
    Path dir;

    private static final String MINIMAL = String.join("\n",
            "relay.name=Orders Relay",
            "debezium.source.database.hostname=db",
            "debezium.source.database.user=relay",
            "debezium.source.database.password=pw",
            "debezium.source.database.dbname=shop",
            "debezium.source.table.include.list=public.outbox_event",
            "debezium.sink.rabbitmq.connection.host=mq",
            "debezium.sink.rabbitmq.exchange=events");

    private RelayConfig load(String... extraLines) throws Exception {
        Path file = dir.resolve("relay.properties");
        Files.writeString(file, MINIMAL + "\n" + String.join("\n", extraLines));
        return RelayConfigLoader.load(file, null);
    }

    @Test
    void flushingAfterEveryBatchOfOneIsWarnedAbout() throws Exception {
        assertThat(load("debezium.source.offset.flush.interval.ms=0", "debezium.source.max.batch.size=1").warnings())
                .anyMatch(w -> w.startsWith("debezium.source.offset.flush.interval.ms=0") && w.contains("a database commit per event"));
        assertThat(load("debezium.source.offset.flush.interval.ms=0").warnings()).noneMatch(w -> w.contains("offset.flush.interval.ms"));
        assertThat(load("debezium.source.max.batch.size=1").warnings()).noneMatch(w -> w.contains("offset.flush.interval.ms"));
    }

    @Test
    void theChainTheRelayBuildsRoutesByAggregateTypeAndTypeUnlessARoutingSettingIsGiven() throws Exception {
        String template = "transforms.outbox.routing.key.template";
        assertThat(load().engineProperties().getProperty(template)).isEqualTo("${aggregatetype}.${type}");
        assertThat(load().routingColumns()).containsExactly("aggregatetype", "type");
        // The router's own columns, when the table names them otherwise.
        assertThat(load("debezium.transforms.outbox.route.by.field=kind", "debezium.transforms.outbox.table.field.event.type=event_type")
                .engineProperties().getProperty(template)).isEqualTo("${kind}.${event_type}");
        assertThat(load("debezium.transforms.outbox.routing.key.template=${aggregatetype}").engineProperties().getProperty(template))
                .isEqualTo("${aggregatetype}");
        for (String routing : List.of("debezium.sink.rabbitmq.routingKey=all", "debezium.sink.rabbitmq.routingKey.source=topic",
                "debezium.sink.rabbitmq.routingKeyFromTopicName=true")) {
            assertThat(load(routing).engineProperties().getProperty(template)).as(routing).isNull();
        }
        // A Debezium Server file names its transforms and keeps exactly the routing it had.
        RelayConfig debeziumServer = load("debezium.transforms=outbox", "debezium.transforms.outbox.type=io.debezium.transforms.outbox.EventRouter");
        assertThat(debeziumServer.engineProperties().getProperty(template)).isNull();
        assertThat(debeziumServer.routingColumns()).isEmpty();
        // A stream has no routing key to bind by.
        assertThat(load("debezium.sink.type=rabbitmqstream", "debezium.sink.rabbitmqstream.host=streams", "debezium.sink.rabbitmqstream.stream=s")
                .engineProperties().getProperty(template)).isNull();
    }

    @Test
    void debeziumsContextHeadersAreLeftOutUnlessAskedFor() throws Exception {
        assertThat(load().engineProperties().getProperty("extended.headers.enabled")).isEqualTo("false");
        assertThat(load("debezium.source.extended.headers.enabled=true").engineProperties().getProperty("extended.headers.enabled")).isEqualTo("true");
    }

    @Test
    void debeziumNeverRestartsTheTaskInPlace() throws Exception {
        RelayConfig defaults = load();
        assertThat(defaults.engineProperties().getProperty("errors.max.retries")).isEqualTo("0");
        assertThat(defaults.warnings()).noneMatch(w -> w.contains("errors.max.retries"));
        RelayConfig fromDebeziumServer = load("debezium.source.errors.max.retries=-1");
        assertThat(fromDebeziumServer.engineProperties().getProperty("errors.max.retries")).isEqualTo("0");
        assertThat(fromDebeziumServer.warnings()).anyMatch(w -> w.startsWith("debezium.source.errors.max.retries=-1 is replaced by 0")
                && w.contains("relay.restart.backoff.initial.ms"));
    }

    @Test
    void publicationColumnsAreAListAndNeedAnInsertOnlyRelayManagedPublication() throws Exception {
        assertThat(load().relay().publicationColumns()).isEmpty();
        assertThat(load("relay.publication.columns= id, aggregatetype,aggregateid , type,payload,").relay().publicationColumns())
                .containsExactly("id", "aggregatetype", "aggregateid", "type", "payload");
        assertThatThrownBy(() -> load("relay.publication.columns=id,payload", "debezium.source.publication.autocreate.mode=disabled",
                "debezium.source.skipped.operations=t"))
                .isInstanceOfSatisfying(ConfigProblems.class, e -> assertThat(e.problems()).satisfiesExactlyInAnyOrder(
                        p -> assertThat(p).startsWith("relay.publication.columns needs the relay to manage its publication")
                                .contains("publication.autocreate.mode=filtered"),
                        p -> assertThat(p).startsWith("relay.publication.columns needs debezium.source.skipped.operations to skip updates and deletes")));
        // Without a column list the same settings are the user's business.
        assertThat(load("debezium.source.publication.autocreate.mode=disabled", "debezium.source.skipped.operations=t").relay().publicationColumns()).isEmpty();
    }

    @Test
    void aDebeziumServerStreamSinkConfigurationIsReadWithItsMeanings() throws Exception {
        RelayConfig config = load("debezium.sink.type=rabbitmqstream", "debezium.sink.rabbitmqstream.connection.host=old",
                "debezium.sink.rabbitmqstream.host=streams", "debezium.sink.rabbitmqstream.port=5551", "debezium.sink.rabbitmqstream.username=relay",
                "debezium.sink.rabbitmqstream.password=secret", "debezium.sink.rabbitmqstream.stream=orders",
                "debezium.sink.rabbitmqstream.stream.maxAge=P7D", "debezium.sink.rabbitmqstream.stream.maxLength=10gb",
                "debezium.sink.rabbitmqstream.superStream.enable=true", "debezium.sink.rabbitmqstream.superStream.bindingKeys=a,b",
                "debezium.sink.rabbitmqstream.producer.confirmTimeout=7", "debezium.sink.rabbitmqstream.producer.maxUnconfirmedMessages=500");
        assertThat(config.streams()).isTrue();
        StreamSinkConfig stream = config.stream();
        // The deprecated connection.host wins when set, as in Debezium Server; the port comes from port.
        assertThat(stream.host()).isEqualTo("old");
        assertThat(stream.port()).isEqualTo(5551);
        assertThat(stream.password().value()).isEqualTo("secret");
        assertThat(stream.maxAge()).isEqualTo(java.time.Duration.ofDays(7));
        assertThat(stream.partitionStreams("orders")).containsExactly("orders-a", "orders-b");
        assertThat(stream.producerName()).as("the producer is named after the relay by default").isEqualTo("Orders Relay");
        assertThat(config.delivery().ackTimeout()).hasSeconds(7);
        assertThat(config.delivery().ackTimeoutKey()).isEqualTo("debezium.sink.rabbitmqstream.producer.confirmTimeout");
        assertThat(config.delivery().maxInFlight()).isEqualTo(500);
        assertThat(config.warnings()).anyMatch(w -> w.contains("connection.host and") && w.contains("deprecated"))
                .anyMatch(w -> w.startsWith("debezium.sink.rabbitmq.connection.host, debezium.sink.rabbitmq.exchange belong to the rabbitmq sink"));
    }

    @Test
    void streamSettingsThatWouldBreakDeduplicationOrDoNotParseAreRefused() {
        assertThatThrownBy(() -> load("debezium.sink.type=rabbitmqstream", "debezium.sink.rabbitmqstream.producer.subEntrySize=10",
                "debezium.sink.rabbitmqstream.stream.maxAge=7 days", "debezium.sink.rabbitmqstream.stream.maxSegmentSize=big",
                "debezium.sink.rabbitmqstream.stram=orders", "debezium.sink.type2=x"))
                .isInstanceOfSatisfying(ConfigProblems.class, e -> assertThat(e.problems())
                        .anyMatch(p -> p.startsWith("debezium.sink.rabbitmqstream.producer.subEntrySize=10 cannot be used") && p.contains("de-duplicates whole batches"))
                        .anyMatch(p -> p.startsWith("debezium.sink.rabbitmqstream.stream.maxAge=7 days is not an ISO-8601 duration"))
                        .anyMatch(p -> p.startsWith("debezium.sink.rabbitmqstream.stream.maxSegmentSize=big is not a byte capacity"))
                        .anyMatch(p -> p.startsWith("debezium.sink.rabbitmqstream.stram is not a setting of the RabbitMQ Streams sink") && p.contains("stream")));
        assertThatThrownBy(() -> load("debezium.sink.type=rabbitmqstream", "relay.standby=false",
                "debezium.source.offset.storage=org.apache.kafka.connect.storage.FileOffsetBackingStore"))
                .isInstanceOfSatisfying(ConfigProblems.class, e -> assertThat(e.problems())
                        .anyMatch(p -> p.startsWith("debezium.sink.type=rabbitmqstream needs the offsets in PostgreSQL")));
        assertThatThrownBy(() -> load("debezium.sink.type=kafka")).isInstanceOfSatisfying(ConfigProblems.class,
                e -> assertThat(e.problems()).anyMatch(p -> p.contains("rabbitmqstream for streams")));
    }

    @Test
    void aShardIsNamedAfterTheRelayItsIndexAndTheCount() throws Exception {
        RelayConfig config = load("relay.shard.count=3", "relay.shard.index=1");
        assertThat(config.name()).isEqualTo("Orders Relay-1of3");
        assertThat(config.slotName()).isEqualTo("orders_relay_1of3");
        assertThat(config.publicationName()).isEqualTo("orders_relay_1of3");
        assertThat(config.relay().shard().baseName()).isEqualTo("Orders Relay");
        assertThat(config.shardFilter().expression()).isEqualTo("(hashtext(coalesce(\"aggregateid\"::text, '')) & 2147483647) % 3 = 1");
        // As PostgreSQL prints the filter back: for a text column, a uuid column, and one made by an older relay (no NULLs placed).
        String printed = "(((hashtext(COALESCE(aggregateid, ''::text)) & 2147483647) % 3) = 1)";
        assertThat(ShardFilter.parse(printed)).isEqualTo(config.shardFilter());
        assertThat(ShardFilter.parse("(((hashtext(COALESCE((aggregateid)::text, ''::text)) & 2147483647) % 3) = 1)"))
                .isEqualTo(config.shardFilter());
        String older = "((hashtext((aggregateid)::text) & 2147483647) % 3) = 1";
        assertThat(ShardFilter.parse(older)).isEqualTo(config.shardFilter());
        assertThat(ShardFilter.placesNulls(printed)).isTrue();
        assertThat(ShardFilter.placesNulls(older)).isFalse();
        assertThat(load().shardFilter()).isNull();
        assertThatThrownBy(() -> load("relay.shard.count=3", "relay.shard.index=3"))
                .isInstanceOfSatisfying(ConfigProblems.class, e -> assertThat(e.problems()).anyMatch(p -> p.startsWith("relay.shard.index=3 is outside 0..2")));
        assertThatThrownBy(() -> load("relay.shard.count=3", "relay.shard.index=2", "debezium.source.slot.name=mine"))
                .isInstanceOfSatisfying(ConfigProblems.class, e -> assertThat(e.problems())
                        .anyMatch(p -> p.startsWith("debezium.source.slot.name cannot be set with relay.shard.count=3")));
        assertThatThrownBy(() -> load("relay.shard.count=2", "relay.shard.index=0", "debezium.source.skipped.operations=t"))
                .isInstanceOfSatisfying(ConfigProblems.class, e -> assertThat(e.problems())
                        .anyMatch(p -> p.startsWith("relay.shard.count needs debezium.source.skipped.operations to skip updates and deletes")));
    }

    @Test
    void thePublicationCarriesWhatTheRouterReadsUnlessToldOtherwise() throws Exception {
        RelayConfig.PublicationColumns derived = load().publicationColumns();
        assertThat(derived.derived()).isTrue();
        assertThat(derived.names()).containsExactlyInAnyOrder("id", "aggregateid", "type", "payload", "aggregatetype", "tracingspancontext");
        assertThat(load("debezium.transforms.outbox.table.fields.additional.placement=tenant:header,region:header:where",
                "debezium.transforms.outbox.routing.key.template=${aggregatetype}.${shard_key}", "debezium.transforms.outbox.table.field.event.correlation.id=corr")
                .publicationColumns().names()).contains("tenant", "region", "shard_key", "corr");
        assertThat(load("relay.publication.columns=*").publicationColumns()).isEqualTo(RelayConfig.PublicationColumns.ALL);
        assertThat(load("relay.publication.columns=id,payload").publicationColumns()).isEqualTo(new RelayConfig.PublicationColumns(List.of("id", "payload"), false));
        assertThat(load("debezium.source.skipped.operations=t").publicationColumns()).as("updates published: no list").isEqualTo(RelayConfig.PublicationColumns.ALL);
        assertThat(load("debezium.transforms=outbox,extra", "debezium.transforms.outbox.type=io.outboxrelay.transforms.OutboxEventRouter",
                "debezium.transforms.extra.type=org.apache.kafka.connect.transforms.InsertField$Value").publicationColumns())
                .as("another SMT may read any column").isEqualTo(RelayConfig.PublicationColumns.ALL);
    }

    @Test
    void minimalFileGetsTheRelayDefaults() throws Exception {
        Properties engine = load().engineProperties();
        assertThat(engine).containsEntry("name", "Orders Relay")
                .containsEntry("plugin.name", "pgoutput")
                .containsEntry("slot.name", "orders_relay")
                .containsEntry("publication.name", "orders_relay")
                .containsEntry("publication.autocreate.mode", "filtered")
                .containsEntry("snapshot.mode", "no_data")
                .containsEntry("offset.flush.interval.ms", "100")
                .doesNotContainKey("max.batch.size")
                .containsEntry("offset.storage", "io.outboxrelay.offsetstore.PostgresOffsetBackingStore")
                .containsEntry("offset.storage.postgres.url", "jdbc:postgresql://db:5432/shop")
                .containsEntry("offset.storage.postgres.user", "relay")
                .containsEntry("transforms", "outbox")
                .containsEntry("transforms.outbox.type", "io.outboxrelay.transforms.OutboxEventRouter")
                .containsEntry("transforms.outbox.amqp.headers.enabled", "true")
                .containsEntry("transforms.outbox.invalid.message.behavior", "flag")
                .containsEntry("heartbeat.interval.ms", "10000")
                .containsEntry("poll.interval.ms", "10");
        RelayConfig config = load();
        assertThat(config.sink().maxInFlight()).isEqualTo(1000);
        assertThat(config.sink().ackTimeout()).isEqualTo(Duration.ofSeconds(30));
        assertThat(config.sink().deliveryMode()).isEqualTo(2);
        assertThat(config.sink().nullValue()).isEqualTo("default");
        assertThat(config.sink().connection()).containsEntry("host", "mq");
        assertThat(config.relay().onUnroutable()).isEqualTo(RelaySettings.FailurePolicy.DEAD_LETTER);
        assertThat(config.database().toString()).doesNotContain("pw");
    }

    @Test
    void sourceSettingsOverrideDefaults() throws Exception {
        Properties engine = load("debezium.source.slot.name=custom", "debezium.source.snapshot.mode=initial").engineProperties();
        assertThat(engine).containsEntry("slot.name", "custom").containsEntry("snapshot.mode", "initial");
    }

    @Test
    void debeziumPlaceholdersPassVerbatimEscapedOrNot() throws Exception {
        Properties engine = load(
                "debezium.transforms=outbox",
                "debezium.transforms.outbox.type=io.debezium.transforms.outbox.EventRouter",
                "debezium.transforms.outbox.route.topic.replacement=\\\\${routedByValue}.events",
                "debezium.transforms.outbox.routing.key.template=${aggregatetype}.${type}",
                "debezium.source.database.hostname=${DB_HOST_NOT_SET:fallback-host}").engineProperties();
        assertThat(engine).containsEntry("transforms.outbox.route.topic.replacement", "${routedByValue}.events")
                .containsEntry("transforms.outbox.routing.key.template", "${aggregatetype}.${type}")
                .containsEntry("transforms.outbox.type", "io.outboxrelay.transforms.OutboxEventRouter")
                .containsEntry("transforms.outbox.amqp.headers.enabled", "true")
                .containsEntry("transforms.outbox.invalid.message.behavior", "flag")
                .containsEntry("database.hostname", "fallback-host");
    }

    @Test
    void placeholdersResolveFromOtherKeys() throws Exception {
        Properties engine = load("shared.host=pg.internal", "debezium.source.database.hostname=${shared.host}").engineProperties();
        assertThat(engine).containsEntry("database.hostname", "pg.internal");
    }

    @Test
    void systemPropertiesOverrideTheFile() throws Exception {
        System.setProperty("debezium.sink.rabbitmq.exchange", "from-sysprop");
        try {
            assertThat(load().sink().exchange()).isEqualTo("from-sysprop");
        }
        finally {
            System.clearProperty("debezium.sink.rabbitmq.exchange");
        }
    }

    @Test
    void secretsComeFromADirectory() throws Exception {
        Path secrets = Files.createDirectory(dir.resolve("secrets"));
        Files.writeString(secrets.resolve("debezium.source.database.password"), "from-secret");
        Path file = dir.resolve("relay.properties");
        Files.writeString(file, MINIMAL.replace("debezium.source.database.password=pw\n", ""));
        RelayConfig config = RelayConfigLoader.load(file, secrets);
        assertThat(config.database().password().value()).isEqualTo("from-secret");
        assertThat(config.engineProperties()).containsEntry("database.password", "from-secret");
    }

    @Test
    void passwordsFromTheSecretsDirectoryAreReadAgainAtEveryConnection() throws Exception {
        Path secrets = Files.createDirectory(dir.resolve("rotating"));
        Path dbFile = secrets.resolve("debezium.source.database.password");
        Files.writeString(dbFile, "first\n");
        // SmallRye Config's file source also matches the upper-case, underscored name.
        Files.writeString(secrets.resolve("DEBEZIUM_SINK_RABBITMQ_CONNECTION_PASSWORD"), "mq-first");
        Path file = dir.resolve("relay.properties");
        Files.writeString(file, MINIMAL.replace("debezium.source.database.password=pw\n", "")
                + "\ndebezium.source.offset.storage=io.outboxrelay.offsetstore.PostgresOffsetBackingStore\n");
        RelayConfig config = RelayConfigLoader.load(file, secrets);

        assertThat(config.database().password().file().path()).isEqualTo(dbFile);
        Files.writeString(dbFile, "second\n");
        assertThat(config.database().password().value()).isEqualTo("second");
        // Debezium's connections get the driver's plug-in that reads the file at each connection; the offset store reads it itself.
        assertThat(config.engineProperties())
                .containsEntry("database.authenticationPluginClassName", PasswordFilePlugin.class.getName())
                .containsEntry("database." + PasswordFilePlugin.FILE_PROPERTY, dbFile.toString())
                .containsEntry("offset.storage.postgres.password.file", dbFile.toString());
        assertThat(config.sink().password().file().path()).isEqualTo(secrets.resolve("DEBEZIUM_SINK_RABBITMQ_CONNECTION_PASSWORD"));
        assertThat(config.sink().password().toString()).doesNotContain("mq-first");
    }

    @Test
    void standbysNeedTheOffsetsInPostgresAndARenewalWellInsideTheLease() {
        assertThatThrownBy(() -> load("debezium.source.offset.storage=org.apache.kafka.connect.storage.FileOffsetBackingStore",
                "relay.leader.lease.ms=2000", "relay.leader.renew.ms=1000"))
                .isInstanceOf(ConfigProblems.class)
                .hasMessageContaining("relay.standby=true needs the offsets in PostgreSQL")
                .hasMessageContaining("Set relay.standby=false to run a single relay without standbys")
                .hasMessageContaining("relay.leader.renew.ms=1000 must be at most a third of relay.leader.lease.ms=2000");
    }

    @Test
    void theReplicationConnectionCarriesTheWalsenderTimeoutWithStatusUpdatesWellInsideIt() throws Exception {
        RelayConfig defaults = load();
        assertThat(defaults.engineProperties()).containsEntry("database.options", "-c wal_sender_timeout=10000")
                .containsEntry("status.update.interval.ms", "2500");
        RelayConfig own = load("debezium.source.database.options=-c statement_timeout=5min", "relay.leader.walsender.timeout.ms=20000",
                "debezium.source.status.update.interval.ms=1000");
        assertThat(own.engineProperties()).containsEntry("database.options", "-c statement_timeout=5min -c wal_sender_timeout=20000")
                .containsEntry("status.update.interval.ms", "1000");
        RelayConfig off = load("relay.leader.walsender.timeout.ms=0");
        assertThat(off.engineProperties()).doesNotContainKey("database.options").doesNotContainKey("status.update.interval.ms");
        assertThatThrownBy(() -> load("debezium.source.status.update.interval.ms=6000")).isInstanceOf(ConfigProblems.class)
                .hasMessageContaining("debezium.source.status.update.interval.ms=6000 must be at most half of relay.leader.walsender.timeout.ms=10000");
        assertThatThrownBy(() -> load("debezium.source.database.options=-c wal_sender_timeout=0")).isInstanceOf(ConfigProblems.class)
                .hasMessageContaining("debezium.source.database.options sets wal_sender_timeout: set relay.leader.walsender.timeout.ms instead");
    }

    @Test
    void oneProducerNameForEveryShardIsRefused() throws Exception {
        assertThatThrownBy(() -> load("debezium.sink.type=rabbitmqstream", "debezium.sink.rabbitmqstream.producer.name=orders",
                "relay.shard.count=3", "relay.shard.index=1")).isInstanceOf(ConfigProblems.class)
                .hasMessageContaining("debezium.sink.rabbitmqstream.producer.name=orders with relay.shard.count=3: every shard would publish as 'orders'")
                .hasMessageContaining("each shard's producer is then named after the shard (Orders Relay-1of3)");
        assertThat(load("debezium.sink.type=rabbitmqstream", "relay.shard.count=3", "relay.shard.index=1").stream().producerName())
                .isEqualTo("Orders Relay-1of3");
    }

    @Test
    void withoutStandbysTheOffsetsMayBeKeptElsewhere() throws Exception {
        RelayConfig config = load("relay.standby=false", "debezium.source.offset.storage=org.apache.kafka.connect.storage.FileOffsetBackingStore");
        assertThat(config.relay().leadership().standby()).isFalse();
    }

    @Test
    void aPasswordFromAnywhereElseIsFixed() throws Exception {
        RelayConfig config = load();
        assertThat(config.database().password().file()).isNull();
        assertThat(config.database().password().value()).isEqualTo("pw");
        assertThat(config.engineProperties()).doesNotContainKey("database.authenticationPluginClassName");
    }

    @Test
    void deprecatedRoutingKeyFromTopicNameMeansTopicWithAWarning() throws Exception {
        RelayConfig config = load("debezium.sink.rabbitmq.routingKeyFromTopicName=true");
        assertThat(config.sink().routingKeySource()).isEqualTo(SinkConfig.RoutingKeySource.TOPIC);
        assertThat(config.warnings()).anyMatch(w -> w.contains("routingKeyFromTopicName is deprecated"));
    }

    @Test
    void everyProblemIsReportedWithItsKey() {
        assertThatThrownBy(() -> load("debezium.sink.type=kafka", "relay.shutdown.grace.ms=soon", "debezium.sink.rabbitmq.autoCreateRoutingKey=yes",
                "relay.colour=blue", "relay.log.format=xml", "relay.http.port=70000", "debezium.sink.kafka.producer.x=1"))
                .isInstanceOfSatisfying(ConfigProblems.class, e -> assertThat(e.problems()).containsExactlyInAnyOrder(
                        "debezium.sink.type=kafka is not supported: outbox-relay publishes to RabbitMQ (use rabbitmq for exchanges and queues, rabbitmqstream for streams)",
                        "relay.shutdown.grace.ms=soon is not a whole number",
                        "debezium.sink.rabbitmq.autoCreateRoutingKey=yes is not a boolean: use true or false",
                        "relay.colour is not a relay setting (`outbox-relay settings` lists them)",
                        "relay.log.format=xml is not one of text, json",
                        "relay.http.port=70000 is out of range: use 0..65535",
                        "debezium.sink.kafka.producer.x belongs to another sink; outbox-relay has debezium.sink.rabbitmq.* and debezium.sink.rabbitmqstream.*"));
    }

    @Test
    void aMistypedDebeziumKeyIsAWarningNamingTheKeyMeant() throws Exception {
        RelayConfig config = load("debezium.source.snapshot.mod=initial", "debezium.source.database.sslmode=require",
                "debezium.source.converters=ts", "debezium.source.ts.type=com.example.TimestampConverter");
        assertThat(config.warnings()).contains("debezium.source.snapshot.mod is not a key of Debezium's PostgreSQL connector or engine; "
                + "did you mean snapshot.mode? It is passed on, and most likely ignored");
        assertThat(config.warnings()).as("driver properties and a converter's own keys are known")
                .noneMatch(w -> w.contains("sslmode") || w.contains("ts.type"));
    }

    @Test
    void aMissingRequiredKeyNamesTheTypoThatWasProbablyMeant() throws Exception {
        Path file = dir.resolve("typo.properties");
        Files.writeString(file, MINIMAL.replace("debezium.source.database.hostname=db", "debezium.source.database.hostnme=db"));
        assertThatThrownBy(() -> RelayConfigLoader.load(file, null)).isInstanceOfSatisfying(ConfigProblems.class, e -> assertThat(e.problems())
                .contains("debezium.source.database.hostname is required: the PostgreSQL host (debezium.source.database.hostnme is set: "
                        + "a typo for debezium.source.database.hostname?)"));
    }

    @Test
    void aMistypedRelayKeyIsAProblemNamingTheKeyMeant() {
        assertThatThrownBy(() -> load("relay.shutdown.grace=5000", "debezium.sink.rabbitmq.max.inflight=10"))
                .isInstanceOfSatisfying(ConfigProblems.class, e -> assertThat(e.problems()).containsExactlyInAnyOrder(
                        "relay.shutdown.grace is not a relay setting; did you mean relay.shutdown.grace.ms? (`outbox-relay settings` lists them)",
                        "debezium.sink.rabbitmq.max.inflight is not a setting of the RabbitMQ sink; did you mean debezium.sink.rabbitmq.max.in.flight? "
                                + "(`outbox-relay settings` lists them; connection.* goes to amqp-client)"));
    }

    @Test
    void anUnresolvedPlaceholderInAPasswordIsAnErrorNotALiteral() throws Exception {
        Path file = dir.resolve("secret.properties");
        Files.writeString(file, MINIMAL.replace("debezium.source.database.password=pw", "debezium.source.database.password=${OUTBOX_RELAY_TEST_UNSET_PW}")
                + "\ndebezium.sink.rabbitmq.connection.password=${OUTBOX_RELAY_TEST_UNSET_MQ:guest}");
        assertThatThrownBy(() -> RelayConfigLoader.load(file, null)).isInstanceOfSatisfying(ConfigProblems.class, e -> assertThat(e.problems())
                .singleElement().asString()
                .startsWith("debezium.source.database.password refers to ${OUTBOX_RELAY_TEST_UNSET_PW}, which is not set: set the environment variable "
                        + "OUTBOX_RELAY_TEST_UNSET_PW")
                .doesNotContain("guest"));
    }

    @Test
    void unknownTopLevelKeyIsAWarning() throws Exception {
        assertThat(load("totally.unknown=1").warnings()).anyMatch(w -> w.startsWith("totally.unknown is not a known setting"));
    }

    @Test
    void quarkusAndFormatKeysAreIgnoredWithAWarning() throws Exception {
        assertThat(load("debezium.format.value=json", "quarkus.log.level=INFO").warnings())
                .contains("debezium.format.value has no effect in outbox-relay and is ignored", "quarkus.log.level has no effect in outbox-relay and is ignored");
    }

    @Test
    void malformedFileIsOneLine() throws Exception {
        Path file = dir.resolve("bad.properties");
        Files.writeString(file, "key=\\u00zz");
        assertThatThrownBy(() -> RelayConfigLoader.load(file, null)).isInstanceOfSatisfying(ConfigProblems.class,
                e -> assertThat(e.problems()).singleElement().asString().contains("is not a valid properties file"));
    }
}
