package io.outboxrelay.source;

import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.transforms.OutboxEventRouterConfig;

/**
 * The outbox columns the router's exchange and routing-key templates name, checked against the
 * outbox tables before anything is published: a row without one of them cannot become a message,
 * so a table without one would have every event dead-lettered. Said once at start, naming the
 * settings, rather than once per event.
 */
public final class RoutingColumns {

    private RoutingColumns() {
    }

    /** What stands in the way, naming the settings; null when every outbox table has every column the templates name. */
    public static String problem(RelayConfig config, SourceInspector inspector) throws SQLException {
        Set<String> columns = config.routingColumns();
        if (columns.isEmpty()) {
            return null;
        }
        List<String> missing = new ArrayList<>();
        for (String table : config.outboxTables()) {
            if (!inspector.table(table).exists()) {
                continue; // named by the table check of its own
            }
            for (String column : columns) {
                if (!inspector.hasColumn(table, column)) {
                    missing.add(table + "." + column);
                }
            }
        }
        if (missing.isEmpty()) {
            return null;
        }
        String routingKey = "debezium.transforms." + config.routerName() + "." + OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE;
        String exchange = "debezium.transforms." + config.routerName() + "." + OutboxEventRouterConfig.EXCHANGE_TEMPLATE;
        return "the router's templates (" + routingKey + "=" + config.routerSetting(OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE, "-") + ", "
                + exchange + "=" + config.routerSetting(OutboxEventRouterConfig.EXCHANGE_TEMPLATE, "-") + "; the routing key is "
                + "${aggregatetype}.${type} by default when the relay builds the chain and no routing setting is given) name "
                + String.join(", ", missing) + ", which the outbox table does not have: every event would be dead-lettered. Name columns the "
                + "table has in " + routingKey + ", or set debezium.sink.rabbitmq.routingKey (one key for every event) or "
                + "debezium.sink.rabbitmq.routingKey.source";
    }
}
