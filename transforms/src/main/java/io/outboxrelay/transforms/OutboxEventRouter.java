package io.outboxrelay.transforms;

import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.ConnectRecord;
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
 * every {@code EventRouter} key with the same meaning, and with those keys alone its output is
 * Debezium's, record for record (topic, partition, key, value, timestamp and headers), because it runs
 * Debezium's router; where Debezium's router throws, it throws Debezium's exception. On top of that:
 * <ul>
 * <li>{@code table.field.event.timestamp} may also be a {@code timestamptz}, a Connect {@code Timestamp}
 * or a plain epoch-milliseconds column, which Debezium's router refuses;</li>
 * <li>{@code amqp.headers.enabled=true} adds the headers in {@link OutboxHeaders} (message id, type,
 * content type, correlation id, traceparent, exchange and routing key from templates);</li>
 * <li>{@code invalid.message.behavior=flag} passes a row that cannot become an event on, flagged with
 * {@link OutboxHeaders#INVALID_REASON}, instead of stopping the connector.</li>
 * </ul>
 * outbox-relay turns on the last two when it builds its chain.
 *
 * <p>Records that are not change events of an outbox insert (heartbeats, transaction metadata, logical
 * messages, values with no schema or an unnamed one, updates, deletes, tombstones) go to Debezium's
 * router alone, which passes them through untouched or drops them; none carries those headers.
 */
public class OutboxEventRouter<R extends ConnectRecord<R>> implements Transformation<R> {

    private static final Logger LOG = LoggerFactory.getLogger(OutboxEventRouter.class);

    private final EventRouter<R> debeziumRouter = new EventRouter<>();
    private String idColumn;
    private String keyColumn;
    private String timestampColumn;
    /** Null unless amqp.headers.enabled: the output is then Debezium's. */
    private AmqpHeaderWriter amqpHeaders;
    private OutboxEventRouterConfig.InvalidBehavior invalidBehavior;

    @Override
    public void configure(Map<String, ?> props) {
        OutboxEventRouterConfig config = new OutboxEventRouterConfig(props);
        idColumn = OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELD_EVENT_ID);
        keyColumn = OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELD_EVENT_KEY);
        timestampColumn = OutboxEventRouterConfig.debeziumValue(props, EventRouterConfigDefinition.FIELD_EVENT_TIMESTAMP);
        amqpHeaders = config.amqpHeaders() ? new AmqpHeaderWriter(config, props) : null;
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
    public static Set<String> columnsRead(Map<String, ?> props) {
        OutboxEventRouterConfig config = new OutboxEventRouterConfig(props);
        Set<String> columns = new LinkedHashSet<>();
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
        columns.addAll(templateColumns(props));
        return columns;
    }

    /**
     * The routing key {@code props}'s routing-key template gives a row of the outbox table, read as
     * column name to JDBC value; null without a template. For tools that show what the router will do.
     *
     * @throws InvalidOutboxEventException when a column the template names is missing or null
     */
    public static String routingKey(Map<String, ?> props, Map<String, ?> row) {
        OutboxEventRouterConfig config = new OutboxEventRouterConfig(props);
        ColumnTemplate template = ColumnTemplate.parse(OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE, config.getString(OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE));
        return template == null ? null : template.render(row);
    }

    /**
     * The columns the exchange and routing-key templates of {@code props} name: a row without one of
     * them cannot become a message, so a table without one would have every event flagged invalid.
     */
    public static Set<String> templateColumns(Map<String, ?> props) {
        OutboxEventRouterConfig config = new OutboxEventRouterConfig(props);
        Set<String> columns = new LinkedHashSet<>();
        for (String key : List.of(OutboxEventRouterConfig.EXCHANGE_TEMPLATE, OutboxEventRouterConfig.ROUTING_KEY_TEMPLATE)) {
            ColumnTemplate template = ColumnTemplate.parse(key, config.getString(key));
            if (template != null) {
                columns.addAll(template.columns());
            }
        }
        return columns;
    }

    @Override
    public R apply(R record) {
        Struct row = InsertedRow.of(record);
        if (row == null) {
            // Not an insert or snapshot read of an outbox row: Debezium decides (pass through, drop, or fail).
            return debeziumRouter.apply(record);
        }
        R routed;
        try {
            routed = debeziumRouter.apply(record);
        }
        catch (RuntimeException e) {
            // Thrown as is when failing: a user who swapped the class in sees Debezium's own error.
            return invalid(record, row, e);
        }
        try {
            return routed == null ? null : addToEvent(routed, row, record);
        }
        catch (DataException e) {
            return invalid(record, row, e instanceof InvalidOutboxEventException ? e : new InvalidOutboxEventException(e.getMessage(), e));
        }
    }

    private R invalid(R record, Struct row, RuntimeException e) {
        if (invalidBehavior == OutboxEventRouterConfig.InvalidBehavior.FAIL) {
            throw e;
        }
        return flagInvalid(record, row, e.getMessage());
    }

    /** The AMQP headers when asked for, and the event timestamp from its column. */
    private R addToEvent(R routed, Struct row, R original) {
        if (amqpHeaders != null) {
            amqpHeaders.addTo(routed, row);
        }
        if (timestampColumn == null) {
            return routed;
        }
        Long millis = EventTimestamp.millis(row, timestampColumn);
        Long timestamp = millis != null ? millis : ((Struct) original.value()).getInt64(Envelope.FieldName.TIMESTAMP);
        return routed.newRecord(routed.topic(), routed.kafkaPartition(), routed.keySchema(), routed.key(),
                routed.valueSchema(), routed.value(), timestamp, routed.headers());
    }

    private R flagInvalid(R record, Struct row, String reason) {
        LOG.warn("Outbox row flagged invalid (event id {}): {}", ColumnText.of(InsertedRow.column(row, idColumn)), reason);
        Headers headers = record.headers().duplicate();
        if (amqpHeaders != null) {
            amqpHeaders.addMessageId(headers, row);
        }
        headers.addString(OutboxHeaders.INVALID_REASON, reason == null ? "unknown error" : reason);
        // Keyed by its aggregate, as a routed event is, not by the table's primary key: the sink keeps each aggregate's order
        // around a row it parks, and the dead-letter table names the aggregate.
        String aggregate = ColumnText.of(InsertedRow.column(row, keyColumn));
        return record.newRecord(record.topic(), record.kafkaPartition(), aggregate == null ? null : Schema.STRING_SCHEMA, aggregate,
                row.schema(), row, record.timestamp(), headers);
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
