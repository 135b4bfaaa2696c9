package io.outboxrelay.transforms;

import org.apache.kafka.connect.connector.ConnectRecord;

/**
 * The Connect headers {@link OutboxEventRouter} adds for a RabbitMQ publisher: with
 * {@code amqp.headers.enabled=true}, and {@link #INVALID_REASON} with {@code invalid.message.behavior=flag};
 * without them, none (the output is Debezium's). Headers under
 * {@code amqp.} and {@code outbox.} are instructions to the sink, not message headers; every other
 * header (Debezium's {@code id}, the {@code table.fields.additional.placement} headers,
 * {@code traceparent}) is meant to travel as an AMQP header.
 */
public final class OutboxHeaders {

    /** AMQP {@code message-id}: the outbox event id as plain text. */
    public static final String MESSAGE_ID = "amqp.message-id";
    /** AMQP {@code type}: the event type column. */
    public static final String TYPE = "amqp.type";
    /** AMQP {@code content-type}. */
    public static final String CONTENT_TYPE = "amqp.content-type";
    /** AMQP {@code correlation-id}, from the configured column. */
    public static final String CORRELATION_ID = "amqp.correlation-id";
    /** Exchange computed from {@code exchange.template}; absent when the sink's settings decide. */
    public static final String EXCHANGE = "amqp.exchange";
    /** Routing key computed from {@code routing.key.template}; absent when the sink's settings decide. */
    public static final String ROUTING_KEY = "amqp.routing-key";
    /** W3C trace context, carried as an AMQP header of the same name. */
    public static final String TRACEPARENT = "traceparent";
    /** Present on an outbox row the router could not turn into a message; its value says why. */
    public static final String INVALID_REASON = "outbox.invalid.reason";

    private static final String SINK_PREFIX_AMQP = "amqp.";
    private static final String SINK_PREFIX_OUTBOX = "outbox.";

    private OutboxHeaders() {
    }

    /** True for a header the sink acts on rather than copies into the message. */
    public static boolean isSinkInstruction(String headerKey) {
        return headerKey.startsWith(SINK_PREFIX_AMQP) || headerKey.startsWith(SINK_PREFIX_OUTBOX);
    }

    /** True for a record that came out of the router as a message (valid or flagged invalid). */
    public static boolean isOutboxEvent(ConnectRecord<?> record) {
        return record.headers().lastWithName(MESSAGE_ID) != null || record.headers().lastWithName(INVALID_REASON) != null;
    }

    /** The reason a record was flagged invalid, or null for a good one. */
    public static String invalidReason(ConnectRecord<?> record) {
        var header = record.headers().lastWithName(INVALID_REASON);
        return header == null ? null : (String) header.value();
    }

    /** A string-valued header, or null. */
    public static String string(ConnectRecord<?> record, String key) {
        var header = record.headers().lastWithName(key);
        return header == null || header.value() == null ? null : header.value().toString();
    }
}
