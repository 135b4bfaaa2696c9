package io.outboxrelay.check;

import java.io.IOException;
import java.sql.SQLException;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeoutException;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;

import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.SinkConfig;
import io.outboxrelay.source.RoutingColumns;
import io.outboxrelay.source.SourceInspector;
import io.outboxrelay.transforms.InvalidOutboxEventException;
import io.outboxrelay.transforms.OutboxEventRouter;
import io.outboxrelay.transforms.OutboxEventRouterConfig;

/**
 * What routing key an event gets, shown for the kinds of event the outbox holds, and a warning when
 * a topic or direct exchange would receive every event under one key: consumers bind to routing
 * keys, and a constant one leaves them a choice of everything or nothing.
 */
final class RoutingCheck {

    /** Kinds of event shown: enough to recognise the pattern, few enough for one line. */
    private static final int KINDS_SHOWN = 8;

    private RoutingCheck() {
    }

    /** The routing key of each kind of event in the outbox tables, or what stands in the way of routing at all. */
    static CheckResult routing(RelayConfig config, SourceInspector source) throws SQLException {
        String problem = RoutingColumns.problem(config, source);
        if (problem != null) {
            return CheckResult.fail(problem);
        }
        String template = template(config);
        if (template == null) {
            return CheckResult.ok("routing key: " + sinkRouting(config.sink()));
        }
        Set<String> keys = new LinkedHashSet<>();
        List<String> columns = List.copyOf(OutboxEventRouter.templateColumns(config.routerProperties()));
        for (String table : config.outboxTables()) {
            if (!source.table(table).exists()) {
                continue;
            }
            for (Map<String, Object> row : source.distinctValues(table, columns, KINDS_SHOWN)) {
                try {
                    keys.add(OutboxEventRouter.routingKey(config.routerProperties(), row));
                }
                catch (InvalidOutboxEventException e) {
                    keys.add("(none: " + e.getMessage() + ")");
                }
            }
        }
        return CheckResult.ok("routing key: " + template + " (" + templateKey(config) + ")"
                + (keys.isEmpty() ? "; the outbox holds no event yet to show it for" : ", for the kinds of event in the outbox: " + String.join(", ", keys)));
    }

    /**
     * A warning when every event goes to a topic or direct exchange under one key. The exchange's
     * type is asked of the broker by declaring the exchange as it exists (AMQP has no other way
     * without the management plugin); a declaration that differs is refused and changes nothing.
     */
    static CheckResult constantKey(RelayConfig config, Connection connection) throws IOException, TimeoutException {
        SinkConfig sink = config.sink();
        if (template(config) != null || sink.routingKeySource() != SinkConfig.RoutingKeySource.STATIC || sink.exchange().isEmpty()) {
            return null;
        }
        String type = exchangeType(connection, sink.exchange());
        if (!"topic".equals(type) && !"direct".equals(type)) {
            return null;
        }
        return CheckResult.warn("every event goes to " + type + " exchange '" + sink.exchange() + "' with the routing key '" + sink.routingKey()
                + "' (" + SinkConfig.PREFIX + "routingKey): a queue bound by kind of event (order.#) gets none, one bound with '" + sink.routingKey()
                + "' gets all; route by kind with debezium.transforms." + (config.routerName() == null ? "outbox" : config.routerName()) + "."
                + OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE + "=${aggregatetype}.${type}");
    }

    /** The type of an existing exchange, or null when none of the declarations matched it (other flags or arguments). */
    private static String exchangeType(Connection connection, String exchange) throws IOException, TimeoutException {
        for (boolean durable : new boolean[] { true, false }) {
            for (String type : List.of("topic", "direct", "fanout", "headers")) {
                // A refused declaration closes its channel: one each.
                Channel channel = connection.createChannel();
                try {
                    channel.exchangeDeclare(exchange, type, durable, false, false, null);
                    return type;
                }
                catch (IOException refused) {
                    // Another type or flags; the broker changed nothing.
                }
                finally {
                    if (channel.isOpen()) {
                        channel.close();
                    }
                }
            }
        }
        return null;
    }

    private static String template(RelayConfig config) {
        String template = config.routerSetting(OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE, null);
        return template == null || template.isBlank() ? null : template;
    }

    private static String templateKey(RelayConfig config) {
        return "debezium.transforms." + config.routerName() + "." + OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE;
    }

    private static String sinkRouting(SinkConfig sink) {
        return switch (sink.routingKeySource()) {
            case STATIC -> "'" + sink.routingKey() + "' for every event (" + SinkConfig.PREFIX + "routingKey)";
            case TOPIC -> "each event's topic name (" + SinkConfig.PREFIX + "routingKey.source=topic)";
            case KEY -> "each event's aggregate id (" + SinkConfig.PREFIX + "routingKey.source=key)";
        };
    }
}
