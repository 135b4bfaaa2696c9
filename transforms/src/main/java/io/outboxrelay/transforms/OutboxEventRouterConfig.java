package io.outboxrelay.transforms;

import java.util.Locale;
import java.util.Map;

import org.apache.kafka.common.config.AbstractConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Type;

import io.debezium.transforms.outbox.EventRouterConfigDefinition;

/**
 * The router's own keys. Every key of Debezium's {@code EventRouter} is accepted as well, with its
 * meaning and default; {@link #CONFIG_DEF} documents both.
 */
final class OutboxEventRouterConfig extends AbstractConfig {

    static final String EVENT_ID_FIELD = EventRouterConfigDefinition.FIELD_EVENT_ID.name();
    static final String EVENT_TYPE_FIELD = EventRouterConfigDefinition.FIELD_EVENT_TYPE.name();
    static final String EVENT_TIMESTAMP_FIELD = EventRouterConfigDefinition.FIELD_EVENT_TIMESTAMP.name();
    static final String PAYLOAD_FIELD = EventRouterConfigDefinition.FIELD_PAYLOAD.name();
    static final String EXPAND_JSON_PAYLOAD = EventRouterConfigDefinition.EXPAND_JSON_PAYLOAD.name();

    static final String CORRELATION_ID_FIELD = "table.field.event.correlation.id";
    static final String TRACING_FIELD = "tracing.span.context.field";
    static final String CONTENT_TYPE = "content.type";
    static final String EXCHANGE_TEMPLATE = "exchange.template";
    static final String ROUTING_KEY_TEMPLATE = "routing.key.template";
    static final String INVALID_BEHAVIOR = "invalid.message.behavior";

    static final String CONTENT_TYPE_AUTO = "auto";

    enum InvalidBehavior {
        /** Pass the row on with {@link OutboxHeaders#INVALID_REASON} so the sink dead-letters it. */
        FLAG,
        /** Throw, which stops the engine. */
        FAIL
    }

    private static final ConfigDef OWN = new ConfigDef()
            .define(CORRELATION_ID_FIELD, Type.STRING, null, Importance.MEDIUM,
                    "Column whose value becomes the AMQP correlation-id. Unset: no correlation-id.")
            .define(TRACING_FIELD, Type.STRING, "tracingspancontext", Importance.LOW,
                    "Column holding the W3C trace context (a traceparent, or Debezium's properties text with a traceparent= line); "
                            + "it travels as the AMQP header 'traceparent'. Ignored when the table has no such column.")
            .define(CONTENT_TYPE, Type.STRING, CONTENT_TYPE_AUTO, Importance.MEDIUM,
                    "AMQP content-type. 'auto': application/json for json/jsonb or expanded payloads, "
                            + "text/plain; charset=utf-8 for text, application/octet-stream for bytea.")
            .define(EXCHANGE_TEMPLATE, Type.STRING, null, Importance.MEDIUM,
                    "Exchange from outbox columns, e.g. '${aggregatetype}'. Unset: the sink's exchange settings decide.")
            .define(ROUTING_KEY_TEMPLATE, Type.STRING, null, Importance.MEDIUM,
                    "Routing key from outbox columns, e.g. '${aggregatetype}.${type}'. Unset: the sink's routing key settings decide.")
            .define(INVALID_BEHAVIOR, Type.STRING, "flag", ConfigDef.CaseInsensitiveValidString.in("flag", "fail"), Importance.MEDIUM,
                    "What to do with an outbox row that cannot become a message (id missing, payload column missing, invalid JSON with "
                            + "expansion on, a template column null): 'flag' passes it on with the header " + OutboxHeaders.INVALID_REASON
                            + " so the sink dead-letters it and the stream goes on; 'fail' stops the engine.");

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
    }

    InvalidBehavior invalidBehavior() {
        return InvalidBehavior.valueOf(getString(INVALID_BEHAVIOR).toUpperCase(Locale.ROOT));
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
