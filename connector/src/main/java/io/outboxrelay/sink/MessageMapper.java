package io.outboxrelay.sink;

import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Date;
import java.util.HashMap;
import java.util.Map;

import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.source.SourceRecord;

import com.rabbitmq.client.AMQP;

import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.config.SinkConfig;
import io.outboxrelay.config.StreamSinkConfig;
import io.outboxrelay.transforms.OutboxHeaders;

/**
 * Turns a routed outbox record into an AMQP message: routing and properties from the router's
 * headers, falling back to the {@code debezium.sink.rabbitmq.*} settings as Debezium Server's sink
 * reads them; every other Connect header travels as a plain AMQP header value. Used on the engine
 * thread only (the JSON converter is not shared).
 */
public final class MessageMapper {

    /** Where a message goes: an exchange and routing key, or a stream and the key that picks a super stream's partition. */
    private interface Routing {
        String destination(SourceRecord record);

        String routingKey(SourceRecord record);
    }

    private final Routing routing;
    private final int deliveryMode;
    private final String appId;
    private final byte[] nullBody;
    private final JsonConverter json = new JsonConverter();

    public MessageMapper(SinkConfig sink, String appId) {
        this(new ExchangeRouting(sink), sink.deliveryMode(), sink.nullValue(), appId);
    }

    /**
     * For the stream sink: the stream is {@code stream}, else the topic, as Debezium Server's stream
     * name mapper gives it; the routing key is the record key, the aggregate id, which keeps each
     * aggregate in one partition of a super stream.
     */
    public MessageMapper(StreamSinkConfig stream, String appId) {
        this(new Routing() {
            @Override
            public String destination(SourceRecord record) {
                return stream.stream() != null ? stream.stream() : record.topic();
            }

            @Override
            public String routingKey(SourceRecord record) {
                return record.key() == null ? "" : String.valueOf(record.key());
            }
        }, 2, stream.nullValue(), appId);
    }

    private MessageMapper(Routing routing, int deliveryMode, String nullValue, String appId) {
        this.routing = routing;
        this.deliveryMode = deliveryMode;
        this.appId = appId;
        this.nullBody = nullValue.getBytes(StandardCharsets.UTF_8);
        json.configure(Map.of("schemas.enable", "false", "converter.type", "value"), false);
    }

    public OutgoingMessage map(SourceRecord record) {
        Map<String, Object> headers = new HashMap<>();
        for (Header h : record.headers()) {
            if (!OutboxHeaders.isSinkInstruction(h.key()) && h.value() != null) {
                headers.put(h.key(), amqpValue(h.schema(), h.value(), record.topic()));
            }
        }
        AMQP.BasicProperties props = new AMQP.BasicProperties.Builder()
                .deliveryMode(deliveryMode)
                .messageId(OutboxHeaders.string(record, OutboxHeaders.MESSAGE_ID))
                .type(OutboxHeaders.string(record, OutboxHeaders.TYPE))
                .contentType(OutboxHeaders.string(record, OutboxHeaders.CONTENT_TYPE))
                .correlationId(OutboxHeaders.string(record, OutboxHeaders.CORRELATION_ID))
                .timestamp(new Date(record.timestamp() != null ? record.timestamp() : System.currentTimeMillis()))
                .appId(appId)
                .headers(headers.isEmpty() ? null : headers)
                .build();
        return new OutgoingMessage(routing.destination(record), routing.routingKey(record), props, body(record.valueSchema(), record.value(), record.topic()));
    }

    private record ExchangeRouting(SinkConfig sink) implements Routing {

        @Override
        public String destination(SourceRecord record) {
            String routed = OutboxHeaders.string(record, OutboxHeaders.EXCHANGE);
            if (routed != null) {
                return routed;
            }
            return sink.exchange().isEmpty() ? record.topic() : sink.exchange();
        }

        @Override
        public String routingKey(SourceRecord record) {
            String routed = OutboxHeaders.string(record, OutboxHeaders.ROUTING_KEY);
            if (routed != null) {
                return routed;
            }
            return switch (sink.routingKeySource()) {
                case STATIC -> sink.routingKey();
                case TOPIC -> record.topic();
                // Debezium Server uses the serialized (JSON) key; with Connect records the key is the plain column value.
                case KEY -> record.key() == null ? "" : String.valueOf(record.key());
            };
        }
    }

    /** The record value as message body bytes; structured values (expanded JSON, envelopes) become JSON. */
    byte[] body(Schema schema, Object value, String topic) {
        if (value == null) {
            return nullBody;
        }
        if (value instanceof String s) {
            return s.getBytes(StandardCharsets.UTF_8);
        }
        if (value instanceof byte[] bytes) {
            return bytes;
        }
        if (value instanceof ByteBuffer buffer) {
            return bytes(buffer);
        }
        if (value instanceof Number || value instanceof Boolean) {
            return value.toString().getBytes(StandardCharsets.UTF_8);
        }
        return json.fromConnectData(topic, schema, value);
    }

    private Object amqpValue(Schema schema, Object value, String topic) {
        if (value instanceof String || value instanceof Integer || value instanceof Long || value instanceof Boolean
                || value instanceof Short || value instanceof Byte || value instanceof Double || value instanceof Float
                || value instanceof byte[] || value instanceof BigDecimal || value instanceof Date) {
            return value;
        }
        if (value instanceof ByteBuffer buffer) {
            return bytes(buffer);
        }
        return new String(json.fromConnectData(topic, schema, value), StandardCharsets.UTF_8);
    }

    private static byte[] bytes(ByteBuffer buffer) {
        byte[] bytes = new byte[buffer.remaining()];
        buffer.duplicate().get(bytes);
        return bytes;
    }
}
