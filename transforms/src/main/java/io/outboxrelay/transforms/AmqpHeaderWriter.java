package io.outboxrelay.transforms;

import java.util.Map;

import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.header.Headers;

import io.debezium.transforms.outbox.EventRouterConfigDefinition;

/**
 * Adds to an event Debezium's router produced the headers a RabbitMQ publisher acts on
 * ({@link OutboxHeaders}), after checking that its row can become a message at all: a message needs an
 * id to be deduplicated by and a body, and a payload that claims to be JSON must be JSON. Only with
 * {@code amqp.headers.enabled=true}: these headers are no part of Debezium's output.
 */
final class AmqpHeaderWriter {

    /** The field Debezium's router puts the payload in when the value is an envelope. */
    private static final String PAYLOAD = "payload";

    private final String idColumn;
    private final String payloadColumn;
    private final String typeColumn;
    private final String correlationIdColumn;
    private final String tracingColumn;
    private final String fixedContentType;
    private final boolean expandJson;
    private final boolean envelopeValue;
    private final boolean tombstoneOnEmptyPayload;
    private final ColumnTemplate exchangeTemplate;
    private final ColumnTemplate routingKeyTemplate;

    AmqpHeaderWriter(OutboxEventRouterConfig config, Map<String, ?> props) {
        idColumn = OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELD_EVENT_ID);
        payloadColumn = OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELD_PAYLOAD);
        typeColumn = OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELD_EVENT_TYPE);
        expandJson = Boolean.parseBoolean(OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.EXPAND_JSON_PAYLOAD));
        tombstoneOnEmptyPayload = Boolean.parseBoolean(OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.ROUTE_TOMBSTONE_ON_EMPTY_PAYLOAD));
        envelopeValue = hasEnvelopePlacement(OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELDS_ADDITIONAL_PLACEMENT));
        correlationIdColumn = config.getString(OutboxEventRouterConfig.CORRELATION_ID_FIELD);
        tracingColumn = config.getString(OutboxEventRouterConfig.TRACING_FIELD);
        fixedContentType = config.fixedContentType();
        exchangeTemplate = ColumnTemplate.parse(OutboxEventRouterConfig.EXCHANGE_TEMPLATE, config.getString(OutboxEventRouterConfig.EXCHANGE_TEMPLATE));
        routingKeyTemplate = ColumnTemplate.parse(OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE, config.getString(OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE));
    }

    /** Whether any 'column:placement[:alias]' entry places a column in the envelope, which makes the value a Struct. */
    private static boolean hasEnvelopePlacement(String placements) {
        if (placements == null) {
            return false;
        }
        for (String entry : placements.split(",")) {
            String[] parts = entry.trim().split(":");
            if (parts.length > 1 && "envelope".equalsIgnoreCase(parts[1].trim())) {
                return true;
            }
        }
        return false;
    }

    /**
     * Adds the headers to {@code routed}, the event Debezium's router made of {@code row}.
     *
     * @throws InvalidOutboxEventException when the row cannot become a message
     */
    void addTo(ConnectRecord<?> routed, Struct row) {
        String id = ColumnText.of(InsertedRow.column(row, idColumn));
        if (id == null) {
            throw new InvalidOutboxEventException("the event id column '" + idColumn + "' is null");
        }
        if (InsertedRow.column(row, payloadColumn) == null && !tombstoneOnEmptyPayload) {
            throw new InvalidOutboxEventException("the payload column '" + payloadColumn + "' is null");
        }
        if (expandJson && payload(routed) instanceof String unexpanded) {
            // Debezium's router only logs a warning and passes the text on, which would go out as application/json.
            JsonPayload.requireValid(unexpanded, payloadColumn);
        }
        Headers headers = routed.headers();
        headers.addString(OutboxHeaders.MESSAGE_ID, id);
        addIfPresent(headers, OutboxHeaders.TYPE, ColumnText.of(InsertedRow.column(row, typeColumn)));
        addIfPresent(headers, OutboxHeaders.CORRELATION_ID, ColumnText.of(InsertedRow.column(row, correlationIdColumn)));
        addIfPresent(headers, OutboxHeaders.CONTENT_TYPE, fixedContentType != null ? fixedContentType : ContentType.of(payloadSchema(routed)));
        addIfPresent(headers, OutboxHeaders.TRACEPARENT, TraceParent.find(ColumnText.of(InsertedRow.column(row, tracingColumn))));
        if (exchangeTemplate != null) {
            headers.addString(OutboxHeaders.EXCHANGE, exchangeTemplate.render(row));
        }
        if (routingKeyTemplate != null) {
            headers.addString(OutboxHeaders.ROUTING_KEY, routingKeyTemplate.render(row));
        }
    }

    /** Adds the message id of a row flagged invalid, when it has one: the dead-letter table and redrive name the event by it. */
    void addMessageId(Headers headers, Struct row) {
        addIfPresent(headers, OutboxHeaders.MESSAGE_ID, ColumnText.of(InsertedRow.column(row, idColumn)));
    }

    /** The payload as routed: the value itself, or its 'payload' field when placements add envelope fields. */
    private Object payload(ConnectRecord<?> routed) {
        return envelopeValue && routed.value() instanceof Struct value ? value.get(PAYLOAD) : routed.value();
    }

    private Schema payloadSchema(ConnectRecord<?> routed) {
        Schema schema = routed.valueSchema();
        return envelopeValue && schema != null && schema.field(PAYLOAD) != null ? schema.field(PAYLOAD).schema() : schema;
    }

    private static void addIfPresent(Headers headers, String key, String value) {
        if (value != null) {
            headers.addString(key, value);
        }
    }
}
