package io.outboxrelay.transforms;

import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;

import org.apache.kafka.common.config.AbstractConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Type;
import org.apache.kafka.common.config.ConfigException;

import io.debezium.transforms.outbox.EventRouterConfigDefinition;

/**
 * The router's own keys. Every key of Debezium's {@code EventRouter} is accepted as well, with its
 * meaning and default; {@link #CONFIG_DEF} documents both. With Debezium's keys alone the router's
 * output is Debezium's; the own keys add to it, and only when given.
 */
public final class OutboxEventRouterConfig extends AbstractConfig {

    static final String EVENT_ID_FIELD = EventRouterConfigDefinition.FIELD_EVENT_ID.name();
    static final String EVENT_TYPE_FIELD = EventRouterConfigDefinition.FIELD_EVENT_TYPE.name();
    static final String EVENT_TIMESTAMP_FIELD = EventRouterConfigDefinition.FIELD_EVENT_TIMESTAMP.name();
    static final String PAYLOAD_FIELD = EventRouterConfigDefinition.FIELD_PAYLOAD.name();
    static final String EXPAND_JSON_PAYLOAD = EventRouterConfigDefinition.EXPAND_JSON_PAYLOAD.name();

    /** Whether the router adds the headers a RabbitMQ publisher acts on ({@link OutboxHeaders}). */
    public static final String AMQP_HEADERS = "amqp.headers.enabled";
    static final String CORRELATION_ID_FIELD = "table.field.event.correlation.id";
    static final String TRACING_FIELD = "tracing.span.context.field";
    static final String CONTENT_TYPE = "content.type";
    /** The AMQP exchange from outbox columns, e.g. {@code events.${aggregatetype}}. */
    public static final String EXCHANGE_TEMPLATE = "exchange.template";
    /** The AMQP routing key from outbox columns, e.g. {@code ${aggregatetype}.${type}}. */
    public static final String ROUTING_KEY_TEMPLATE = "routing.key.template";
    /** What becomes of a row that cannot become an event: {@link InvalidBehavior}. */
    public static final String INVALID_BEHAVIOR = "invalid.message.behavior";

    static final String CONTENT_TYPE_AUTO = "auto";

    /** The values of {@link #INVALID_BEHAVIOR}. */
    public enum InvalidBehavior {
        /** Pass the row on with {@link OutboxHeaders#INVALID_REASON} so the sink dead-letters it. */
        FLAG,
        /** Throw, as Debezium's router does, which stops the connector unless its error handling says otherwise. */
        FAIL;

        /** As written in a configuration. */
        public String value() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** The own keys whose only effect is an AMQP header, with the header each one sets. */
    private static final Map<String, String> HEADER_KEYS = new TreeMap<>(Map.of(
            CORRELATION_ID_FIELD, OutboxHeaders.CORRELATION_ID,
            CONTENT_TYPE, OutboxHeaders.CONTENT_TYPE,
            EXCHANGE_TEMPLATE, OutboxHeaders.EXCHANGE,
            ROUTING_KEY_TEMPLATE, OutboxHeaders.ROUTING_KEY));

    private static final ConfigDef OWN = new ConfigDef()
            .define(AMQP_HEADERS, Type.BOOLEAN, false, Importance.HIGH,
                    "Add the Connect headers a RabbitMQ publisher acts on: " + OutboxHeaders.MESSAGE_ID + " (the event id), " + OutboxHeaders.TYPE
                            + " (table.field.event.type), " + OutboxHeaders.CONTENT_TYPE + ", " + OutboxHeaders.CORRELATION_ID + ", "
                            + OutboxHeaders.EXCHANGE + ", " + OutboxHeaders.ROUTING_KEY + " (from the keys that name their columns and templates) and "
                            + OutboxHeaders.TRACEPARENT
                            + ", each column written as text the same way whatever its type (bytes as hex); and check that each row can "
                            + "become a message (an event id, a payload, valid JSON when table.expand.json.payload is on). "
                            + "false: the output is that of Debezium's EventRouter, record for record. outbox-relay sets it to true.")
            .define(CORRELATION_ID_FIELD, Type.STRING, null, Importance.MEDIUM,
                    "Column whose value becomes the AMQP correlation-id. Unset: no correlation-id. Needs " + AMQP_HEADERS + "=true.")
            .define(TRACING_FIELD, Type.STRING, "tracingspancontext", Importance.LOW,
                    "Column holding the W3C trace context (a traceparent, or Debezium's properties text with a traceparent= line); "
                            + "with " + AMQP_HEADERS + "=true it travels as the AMQP header 'traceparent'. Ignored when the table has no such column.")
            .define(CONTENT_TYPE, Type.STRING, CONTENT_TYPE_AUTO, Importance.MEDIUM,
                    "AMQP content-type. 'auto': application/json for json/jsonb or expanded payloads, "
                            + "text/plain; charset=utf-8 for text, application/octet-stream for bytea. Needs " + AMQP_HEADERS + "=true.")
            .define(EXCHANGE_TEMPLATE, Type.STRING, null, Importance.MEDIUM,
                    "Exchange from outbox columns, e.g. '${aggregatetype}'. Unset: the sink's exchange settings decide. Needs "
                            + AMQP_HEADERS + "=true.")
            .define(ROUTING_KEY_TEMPLATE, Type.STRING, null, Importance.MEDIUM,
                    "Routing key from outbox columns, e.g. '${aggregatetype}.${type}'. Unset: the sink's routing key settings decide. Needs "
                            + AMQP_HEADERS + "=true.")
            .define(INVALID_BEHAVIOR, Type.STRING, InvalidBehavior.FAIL.value(),
                    ConfigDef.CaseInsensitiveValidString.in(InvalidBehavior.FLAG.value(), InvalidBehavior.FAIL.value()), Importance.MEDIUM,
                    "What to do with an outbox row that cannot become an event (a column Debezium's router needs is missing or of the "
                            + "wrong type, a bad event timestamp; with " + AMQP_HEADERS + "=true also a null event id or payload, invalid JSON "
                            + "with expansion on, a template column null or absent): 'fail' (the default) throws, as Debezium's router does, "
                            + "Debezium's own errors exactly as Debezium throws them; 'flag' passes the row on, on its source topic with the row "
                            + "as its value and its aggregate id as its key, carrying the header " + OutboxHeaders.INVALID_REASON
                            + ", so that a sink can dead-letter it and the stream goes on. outbox-relay sets 'flag' unless told otherwise.");

    /** Debezium's keys plus ours, for tools that list a transform's settings. */
    static final ConfigDef CONFIG_DEF = withDebeziumKeys();

    private static ConfigDef withDebeziumKeys() {
        ConfigDef all = new ConfigDef(EventRouterConfigDefinition.configDef());
        OWN.configKeys().values().stream()
                .filter(k -> !all.configKeys().containsKey(k.name))
                .forEach(all::define);
        return all;
    }

    OutboxEventRouterConfig(Map<?, ?> props) {
        super(OWN, props, false);
        if (!amqpHeaders()) {
            refuseHeaderKeys(props);
        }
    }

    /**
     * A key that only sets a header, given while the headers are off, would be silently ignored; a
     * configuration written before the headers became optional would lose its routing unnoticed.
     */
    private static void refuseHeaderKeys(Map<?, ?> props) {
        for (Map.Entry<String, String> header : HEADER_KEYS.entrySet()) {
            String key = header.getKey();
            Object value = props.get(key);
            boolean given = value != null && !value.toString().isBlank()
                    && !(key.equals(CONTENT_TYPE) && CONTENT_TYPE_AUTO.equalsIgnoreCase(value.toString().trim()));
            if (given) {
                throw new ConfigException(key, value, "it sets the header " + header.getValue() + ", which the router adds only with "
                        + AMQP_HEADERS + "=true; set that too, or remove " + key);
            }
        }
    }

    boolean amqpHeaders() {
        return getBoolean(AMQP_HEADERS);
    }

    InvalidBehavior invalidBehavior() {
        return InvalidBehavior.valueOf(getString(INVALID_BEHAVIOR).trim().toUpperCase(Locale.ROOT));
    }

    /** A fixed content type, or null for 'auto'. */
    String fixedContentType() {
        String value = getString(CONTENT_TYPE);
        return value == null || value.isBlank() || CONTENT_TYPE_AUTO.equalsIgnoreCase(value) ? null : value;
    }

    /** A Debezium key's value as configured, or its Debezium default. */
    static String debeziumValue(Map<String, ?> props, io.debezium.config.Field field) {
        Object value = props.get(field.name());
        if (value == null) {
            return field.defaultValueAsString();
        }
        String s = value.toString();
        return s.isBlank() ? null : s;
    }
}
