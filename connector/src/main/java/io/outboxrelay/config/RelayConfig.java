package io.outboxrelay.config;

import java.util.List;
import java.util.Properties;

/**
 * A loaded and validated configuration: the Debezium engine's properties (with the relay's
 * defaults), the sink's, the service's and the source database's settings.
 */
public record RelayConfig(
        Properties engineProperties,
        SinkConfig sink,
        RelaySettings relay,
        DatabaseSettings database,
        List<String> outboxTables,
        List<String> warnings) {

    public String name() {
        return relay.name();
    }

    public String slotName() {
        return engineProperties.getProperty("slot.name");
    }

    public String publicationName() {
        return engineProperties.getProperty("publication.name");
    }
}
