package io.outboxrelay.config;

import java.util.List;
import java.util.Map;
import java.util.Properties;

import io.outboxrelay.offsetstore.PostgresOffsetStoreConfig;

/**
 * A loaded and validated configuration: the Debezium engine's properties (with the relay's
 * defaults), the sink's, the service's and the source database's settings.
 *
 * @param stream the RabbitMQ Streams sink's settings when {@code debezium.sink.type=rabbitmqstream}, else null
 */
public record RelayConfig(
        Properties engineProperties,
        SinkConfig sink,
        StreamSinkConfig stream,
        RelaySettings relay,
        DatabaseSettings database,
        List<String> outboxTables,
        List<String> warnings) {

    /** Whether the relay publishes to RabbitMQ Streams rather than to exchanges. */
    public boolean streams() {
        return stream != null;
    }

    /** The window, confirm time-out and back-off of the sink in use. */
    public Delivery delivery() {
        return stream != null ? stream.delivery() : sink.delivery();
    }

    public String name() {
        return relay.name();
    }

    public String slotName() {
        return engineProperties.getProperty("slot.name");
    }

    public String publicationName() {
        return engineProperties.getProperty("publication.name");
    }

    /** The shard's row filter on the aggregate id column (the router's {@code table.field.event.key}); null when unsharded. */
    public ShardFilter shardFilter() {
        RelaySettings.Shard shard = relay.shard();
        return shard.sharded() ? new ShardFilter(routerSetting("table.field.event.key", "aggregateid"), shard.index(), shard.count()) : null;
    }

    /**
     * The outbox columns the publication sends. {@code relay.publication.columns} when given
     * ({@code *}: all); else, where the relay manages an inserts-only publication and the chain is
     * the outbox router alone, the columns the router's configuration reads: a column nobody routes
     * costs PostgreSQL, the network and Debezium's one decoding thread on every row. Another SMT in
     * the chain may read any column, so then all are sent.
     */
    public PublicationColumns publicationColumns() {
        List<String> given = relay.publicationColumns();
        if (given.equals(List.of("*"))) {
            return PublicationColumns.ALL;
        }
        if (!given.isEmpty()) {
            return new PublicationColumns(given, false);
        }
        List<String> skipped = DebeziumKeys.list(engineProperties.getProperty("skipped.operations"));
        List<String> chain = transformChain();
        if (!"filtered".equalsIgnoreCase(engineProperties.getProperty("publication.autocreate.mode")) || !skipped.contains("u") || !skipped.contains("d")
                || chain.size() != 1 || !EngineDefaults.ROUTER_CLASS.equals(engineProperties.getProperty("transforms." + chain.get(0) + ".type"))) {
            return PublicationColumns.ALL;
        }
        return new PublicationColumns(List.copyOf(io.outboxrelay.transforms.OutboxEventRouter.columnsRead(routerProperties())), true);
    }

    /**
     * @param names   the columns; empty for all
     * @param derived taken from the router's configuration: columns the table lacks are left out and its primary key is added,
     *                where a list the user gave is checked strictly
     */
    public record PublicationColumns(List<String> names, boolean derived) {
        public static final PublicationColumns ALL = new PublicationColumns(List.of(), false);
    }

    /** The name of the transform in the chain that is the outbox router, or null when the chain has none. */
    public String routerName() {
        for (String t : transformChain()) {
            if (EngineDefaults.ROUTER_CLASS.equals(engineProperties.getProperty("transforms." + t + ".type"))) {
                return t;
            }
        }
        return null;
    }

    /** The outbox router's own settings, without the {@code transforms.<name>.} prefix. */
    public Map<String, String> routerProperties() {
        Map<String, String> props = new java.util.TreeMap<>();
        String router = routerName();
        if (router != null) {
            String prefix = "transforms." + router + ".";
            for (String key : engineProperties.stringPropertyNames()) {
                if (key.startsWith(prefix) && !key.equals(prefix + "type")) {
                    props.put(key.substring(prefix.length()), engineProperties.getProperty(key));
                }
            }
        }
        return props;
    }

    /** The columns the router's exchange and routing-key templates name; empty without templates or a router. */
    public java.util.Set<String> routingColumns() {
        return routerName() == null ? java.util.Set.of() : io.outboxrelay.transforms.OutboxEventRouter.templateColumns(routerProperties());
    }

    /** A setting of the outbox router in the chain, or {@code fallback}. */
    public String routerSetting(String key, String fallback) {
        String router = routerName();
        return router == null ? fallback : engineProperties.getProperty("transforms." + router + "." + key, fallback);
    }

    /** The slot, publication and topic prefix name of {@code relayName}, as the relay derives them. */
    public static String identifier(String relayName) {
        return EngineDefaults.identifier(relayName);
    }

    /** The names of the SMT chain, in order ({@code transforms}). */
    public List<String> transformChain() {
        return DebeziumKeys.list(engineProperties.getProperty("transforms"));
    }

    /** The offset store's settings, as the store reads them from the engine's properties (the lease lives in its database). */
    @SuppressWarnings({ "unchecked", "rawtypes" })
    public PostgresOffsetStoreConfig offsetStore() {
        return PostgresOffsetStoreConfig.from((Map) engineProperties);
    }
}
