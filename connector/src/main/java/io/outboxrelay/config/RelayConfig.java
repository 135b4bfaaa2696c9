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
