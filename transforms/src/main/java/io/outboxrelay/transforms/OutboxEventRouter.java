package io.outboxrelay.transforms;

import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;

import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.Struct;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.header.Headers;
import org.apache.kafka.connect.transforms.Transformation;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.debezium.data.Envelope;
import io.debezium.transforms.outbox.EventRouter;
import io.debezium.transforms.outbox.EventRouterConfigDefinition;

/**
 * Debezium's outbox {@link EventRouter}, plus what a RabbitMQ publisher needs. A drop-in: it takes
 * every {@code EventRouter} key with the same meaning and produces the same topic, key, value and
 * headers, because it runs Debezium's router; it then adds the headers in {@link OutboxHeaders}
 * (message id, type, content type, correlation id, traceparent, exchange and routing key from
 * templates) and sets the record timestamp from {@code table.field.event.timestamp}, which may also
 * be a {@code timestamptz} column here.
 *
 * <p>Records that are not outbox rows (heartbeats, transaction metadata, logical messages) pass
 * untouched and carry none of those headers. A row that cannot become a message is, by default,
 * passed on flagged with {@link OutboxHeaders#INVALID_REASON} instead of being dropped or stopping
 * the stream ({@code invalid.message.behavior}).
 */
public class OutboxEventRouter<R extends ConnectRecord<R>> implements Transformation<R> {

    private static final Logger LOG = LoggerFactory.getLogger(OutboxEventRouter.class);
    /** The field Debezium's router puts the payload in when the value is an envelope. */
    private static final String PAYLOAD = "payload";

    private final EventRouter<R> debeziumRouter = new EventRouter<>();
    private String idColumn;
    private String keyColumn;
    private String payloadColumn;
    private String typeColumn;
    private String timestampColumn;
    private String correlationIdColumn;
    private String tracingColumn;
    private String fixedContentType;
    private boolean expandJson;
    private boolean envelopeValue;
    private boolean tombstoneOnEmptyPayload;
    private ColumnTemplate exchangeTemplate;
    private ColumnTemplate routingKeyTemplate;
    private OutboxEventRouterConfig.InvalidBehavior invalidBehavior;

    @Override
    public void configure(Map<String, ?> props) {
        OutboxEventRouterConfig config = new OutboxEventRouterConfig(props);
        idColumn = OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELD_EVENT_ID);
        keyColumn = OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELD_EVENT_KEY);
        payloadColumn = OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELD_PAYLOAD);
        typeColumn = OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELD_EVENT_TYPE);
        timestampColumn = OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELD_EVENT_TIMESTAMP);
        expandJson = Boolean.parseBoolean(OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.EXPAND_JSON_PAYLOAD));
        tombstoneOnEmptyPayload = Boolean.parseBoolean(OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.ROUTE_TOMBSTONE_ON_EMPTY_PAYLOAD));
        envelopeValue = hasEnvelopePlacement(OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELDS_ADDITIONAL_PLACEMENT));
        correlationIdColumn = config.getString(OutboxEventRouterConfig.CORRELATION_ID_FIELD);
        tracingColumn = config.getString(OutboxEventRouterConfig.TRACING_FIELD);
        fixedContentType = config.fixedContentType();
        exchangeTemplate = ColumnTemplate.parse(OutboxEventRouterConfig.EXCHANGE_TEMPLATE, config.getString(OutboxEventRouterConfig.EXCHANGE_TEMPLATE));
        routingKeyTemplate = ColumnTemplate.parse(OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE, config.getString(OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE));
        invalidBehavior = config.invalidBehavior();

        // The event timestamp is computed here (Debezium's router rejects timestamptz columns), so
        // Debezium's router must not try; the record timestamp it would set is replaced anyway.
        Map<String, Object> debeziumProps = new HashMap<>(props);
        debeziumProps.remove(OutboxEventRouterConfig.EVENT_TIMESTAMP_FIELD);
        debeziumRouter.configure(debeziumProps);
    }

    /**
     * Every outbox column the router reads under {@code props}: id, key, type, timestamp, payload,
     * the column routed by, schema version, additional placements, correlation id, tracing and the
     * columns the exchange and routing-key templates name. What the relay's publication must carry
     * and nothing more: the rest would only be decoded to be dropped.
     */
    public static java.util.Set<String> columnsRead(Map<String, ?> props) {
        OutboxEventRouterConfig config = new OutboxEventRouterConfig(props);
        java.util.Set<String> columns = new java.util.LinkedHashSet<>();
        for (io.debezium.config.Field field : List.of(EventRouterConfigDefinition.FIELD_EVENT_ID, EventRouterConfigDefinition.FIELD_EVENT_KEY,
                EventRouterConfigDefinition.FIELD_EVENT_TYPE, EventRouterConfigDefinition.FIELD_EVENT_TIMESTAMP, EventRouterConfigDefinition.FIELD_PAYLOAD,
                EventRouterConfigDefinition.ROUTE_BY_FIELD, EventRouterConfigDefinition.FIELD_SCHEMA_VERSION)) {
            String column = OutboxEventRouterConfig.debeziumValue(props, field);
            if (column != null) {
                columns.add(column);
            }
        }
        String placements = OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELDS_ADDITIONAL_PLACEMENT);
        if (placements != null) {
            for (String entry : placements.split(",")) {
                String column = entry.trim().split(":")[0].trim();
                if (!column.isEmpty()) {
                    columns.add(column);
                }
            }
        }
        for (String key : List.of(OutboxEventRouterConfig.CORRELATION_ID_FIELD, OutboxEventRouterConfig.TRACING_FIELD)) {
            String column = config.getString(key);
            if (column != null && !column.isBlank()) {
                columns.add(column.trim());
            }
        }
        for (String key : List.of(OutboxEventRouterConfig.EXCHANGE_TEMPLATE, OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE)) {
            ColumnTemplate template = ColumnTemplate.parse(key, config.getString(key));
            if (template != null) {
                columns.addAll(template.columns());
            }
        }
        return columns;
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

    @Override
    public R apply(R record) {
        Struct row = outboxRow(record);
        if (row == null) {
            // Not an insert or snapshot read of an outbox row: Debezium decides (pass through, drop, or fail).
            return debeziumRouter.apply(record);
        }
        try {
            return enrich(route(record), row, record);
        }
        catch (DataException e) {
            if (invalidBehavior == OutboxEventRouterConfig.InvalidBehavior.FAIL) {
                throw e instanceof InvalidOutboxEventException ? e : new InvalidOutboxEventException(e.getMessage(), e);
            }
            return flagInvalid(record, row, e.getMessage());
        }
    }

    private R route(R record) {
        try {
            return debeziumRouter.apply(record);
        }
        catch (DataException e) {
            throw e;
        }
        catch (RuntimeException e) {
            // Debezium reports a missing column or a bad value as a ConnectException.
            throw new InvalidOutboxEventException(e.getMessage(), e);
        }
    }

    /** The 'after' row of an insert or snapshot read, or null for anything else. */
    private static Struct outboxRow(ConnectRecord<?> record) {
        if (!(record.value() instanceof Struct value) || !Envelope.isEnvelopeSchema(record.valueSchema())) {
            return null;
        }
        Field op = value.schema().field(Envelope.FieldName.OPERATION);
        Field after = value.schema().field(Envelope.FieldName.AFTER);
        if (op == null || after == null) {
            return null;
        }
        String code = value.getString(Envelope.FieldName.OPERATION);
        boolean insert = Envelope.Operation.CREATE.code().equals(code) || Envelope.Operation.READ.code().equals(code);
        return insert ? value.getStruct(Envelope.FieldName.AFTER) : null;
    }

    private R enrich(R routed, Struct row, R original) {
        Object id = column(row, idColumn);
        if (id == null) {
            throw new InvalidOutboxEventException("the event id column '" + idColumn + "' is null");
        }
        if (column(row, payloadColumn) == null && !tombstoneOnEmptyPayload) {
            throw new InvalidOutboxEventException("the payload column '" + payloadColumn + "' is null");
        }
        if (expandJson && payload(routed) instanceof String unexpanded) {
            JsonPayload.requireValid(unexpanded, payloadColumn);
        }
        Headers headers = routed.headers();
        headers.addString(OutboxHeaders.MESSAGE_ID, plainText(id));
        addIfPresent(headers, OutboxHeaders.TYPE, column(row, typeColumn));
        addIfPresent(headers, OutboxHeaders.CORRELATION_ID, column(row, correlationIdColumn));
        String contentType = fixedContentType != null ? fixedContentType : ContentType.of(payloadSchema(routed));
        addIfPresent(headers, OutboxHeaders.CONTENT_TYPE, contentType);
        addIfPresent(headers, OutboxHeaders.TRACEPARENT, TraceParent.find(column(row, tracingColumn)));
        if (exchangeTemplate != null) {
            headers.addString(OutboxHeaders.EXCHANGE, exchangeTemplate.render(row));
        }
        if (routingKeyTemplate != null) {
            headers.addString(OutboxHeaders.ROUTING_KEY, routingKeyTemplate.render(row));
        }
        if (timestampColumn == null) {
            return routed;
        }
        Long millis = EventTimestamp.millis(row, timestampColumn);
        Long timestamp = millis != null ? millis : ((Struct) original.value()).getInt64(Envelope.FieldName.TIMESTAMP);
        return routed.newRecord(routed.topic(), routed.kafkaPartition(), routed.keySchema(), routed.key(),
                routed.valueSchema(), routed.value(), timestamp, headers);
    }

    private R flagInvalid(R record, Struct row, String reason) {
        Object id = column(row, idColumn);
        LOG.warn("Outbox row flagged invalid (event id {}): {}", id, reason);
        Headers headers = record.headers().duplicate();
        if (id != null) {
            headers.addString(OutboxHeaders.MESSAGE_ID, plainText(id));
        }
        headers.addString(OutboxHeaders.INVALID_REASON, reason == null ? "unknown error" : reason);
        // Keyed by its aggregate, as a routed event is, not by the table's primary key: the sink keeps each aggregate's order
        // around a row it parks, and the dead-letter table names the aggregate.
        Object aggregate = column(row, keyColumn);
        return record.newRecord(record.topic(), record.kafkaPartition(), aggregate == null ? null : Schema.STRING_SCHEMA,
                aggregate == null ? null : plainText(aggregate), row.schema(), row, record.timestamp(), headers);
    }

    /** The payload as routed: the value itself, or its 'payload' field when placements add envelope fields. */
    private Object payload(R routed) {
        return envelopeValue && routed.value() instanceof Struct value ? value.get(PAYLOAD) : routed.value();
    }

    private Schema payloadSchema(R routed) {
        Schema schema = routed.valueSchema();
        return envelopeValue && schema != null && schema.field(PAYLOAD) != null ? schema.field(PAYLOAD).schema() : schema;
    }

    private static Object column(Struct row, String name) {
        if (name == null || row.schema().field(name) == null) {
            return null;
        }
        return row.get(name);
    }

    private static void addIfPresent(Headers headers, String key, Object value) {
        if (value != null) {
            headers.addString(key, value.toString());
        }
    }

    private static String plainText(Object value) {
        if (value instanceof byte[] bytes) {
            return HexFormat.of().formatHex(bytes);
        }
        if (value instanceof java.nio.ByteBuffer buffer) {
            byte[] bytes = new byte[buffer.remaining()];
            buffer.duplicate().get(bytes);
            return HexFormat.of().formatHex(bytes);
        }
        return value.toString();
    }

    @Override
    public ConfigDef config() {
        return OutboxEventRouterConfig.CONFIG_DEF;
    }

    @Override
    public void close() {
        debeziumRouter.close();
    }
}
