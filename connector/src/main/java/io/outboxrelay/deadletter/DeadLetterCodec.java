package io.outboxrelay.deadletter;

import java.io.IOException;
import java.math.BigDecimal;
import java.util.Base64;
import java.util.Date;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.json.JsonConverter;
import org.apache.kafka.connect.source.SourceRecord;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.rabbitmq.client.AMQP;
import com.rabbitmq.client.LongString;

import io.outboxrelay.transforms.OutboxHeaders;

/**
 * The one place that builds dead letters and turns their AMQP properties into the table's JSON
 * column and back. Header values keep their AMQP type: strings, booleans and ints are plain JSON
 * (readable in psql); longs, floating point, decimals, timestamps and byte arrays are tagged
 * objects such as {@code {"$bytes": "<base64>"}}, so a re-driven message carries exactly the values
 * it was first published with. Rows written before the tags existed hold plain strings, which read
 * back as strings.
 */
public final class DeadLetterCodec {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String BYTES = "$bytes";
    private static final String LONG = "$long";
    private static final String SHORT = "$short";
    private static final String BYTE = "$byte";
    private static final String DOUBLE = "$double";
    private static final String FLOAT = "$float";
    private static final String DECIMAL = "$decimal";
    private static final String TIMESTAMP = "$timestamp";

    private final JsonConverter rowJson = new JsonConverter();

    public DeadLetterCodec() {
        rowJson.configure(Map.of("schemas.enable", "false", "converter.type", "value"), false);
    }

    /** A message the broker cannot take, kept with everything needed to publish it again as it was. */
    public static DeadLetter undeliverable(String reason, String exchange, String routingKey, AMQP.BasicProperties properties, byte[] body,
                                           String sourceTopic, Object aggregateId) {
        return new DeadLetter(properties.getMessageId(), reason, exchange, routingKey, body, encode(properties), sourceTopic,
                aggregateId == null ? null : String.valueOf(aggregateId));
    }

    /**
     * An outbox row the router could not turn into a message: the row as JSON and its Connect
     * headers. It has no AMQP properties, so it cannot be re-driven; the row is what a person needs.
     * Not thread-safe (the JSON converter is not shared).
     */
    public DeadLetter invalidRow(SourceRecord record, String reason) {
        Map<String, Object> headers = new LinkedHashMap<>();
        for (Header h : record.headers()) {
            headers.put(h.key(), h.value() == null ? null : h.value().toString());
        }
        byte[] row = record.value() == null ? null : rowJson.fromConnectData(record.topic(), record.valueSchema(), record.value());
        return new DeadLetter(OutboxHeaders.string(record, OutboxHeaders.MESSAGE_ID), reason, OutboxHeaders.string(record, OutboxHeaders.EXCHANGE),
                OutboxHeaders.string(record, OutboxHeaders.ROUTING_KEY), row, write(JSON.valueToTree(headers)), record.topic(),
                record.key() == null ? null : String.valueOf(record.key()));
    }

    /** The AMQP properties as the dead-letter table's {@code headers} JSON. */
    public static String encode(AMQP.BasicProperties props) {
        ObjectNode m = JSON.createObjectNode();
        m.put("message-id", props.getMessageId());
        m.put("type", props.getType());
        m.put("content-type", props.getContentType());
        m.put("correlation-id", props.getCorrelationId());
        if (props.getTimestamp() == null) {
            m.putNull("timestamp");
        }
        else {
            m.put("timestamp", props.getTimestamp().getTime());
        }
        m.put("app-id", props.getAppId());
        m.put("delivery-mode", props.getDeliveryMode());
        ObjectNode headers = m.putObject("headers");
        if (props.getHeaders() != null) {
            props.getHeaders().forEach((k, v) -> headers.set(k, value(v)));
        }
        return write(m);
    }

    /** The AMQP properties recorded when the message was parked, or null for a row that never became a message. */
    public static AMQP.BasicProperties decode(String json) throws IOException {
        JsonNode node = json == null ? null : JSON.readTree(json);
        if (node == null || !node.hasNonNull("message-id") || !node.has("delivery-mode")) {
            return null;
        }
        Map<String, Object> headers = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = node.path("headers").fields(); it.hasNext();) {
            Map.Entry<String, JsonNode> e = it.next();
            headers.put(e.getKey(), value(e.getValue()));
        }
        return new AMQP.BasicProperties.Builder()
                .messageId(node.get("message-id").asText())
                .type(text(node, "type"))
                .contentType(text(node, "content-type"))
                .correlationId(text(node, "correlation-id"))
                .appId(text(node, "app-id"))
                .deliveryMode(node.path("delivery-mode").isNumber() ? node.get("delivery-mode").asInt() : null)
                .timestamp(node.path("timestamp").isNumber() ? new Date(node.get("timestamp").asLong()) : null)
                .headers(headers.isEmpty() ? null : headers)
                .build();
    }

    private static JsonNode value(Object v) {
        if (v == null) {
            return JSON.nullNode();
        }
        if (v instanceof String || v instanceof LongString) {
            return JSON.getNodeFactory().textNode(v.toString());
        }
        if (v instanceof Boolean b) {
            return JSON.getNodeFactory().booleanNode(b);
        }
        if (v instanceof Integer i) {
            return JSON.getNodeFactory().numberNode(i);
        }
        ObjectNode tagged = JSON.createObjectNode();
        if (v instanceof byte[] bytes) {
            tagged.put(BYTES, Base64.getEncoder().encodeToString(bytes));
        }
        else if (v instanceof Long l) {
            tagged.put(LONG, l);
        }
        else if (v instanceof Short s) {
            tagged.put(SHORT, s);
        }
        else if (v instanceof Byte b) {
            tagged.put(BYTE, b);
        }
        else if (v instanceof Double d) {
            tagged.put(DOUBLE, d);
        }
        else if (v instanceof Float f) {
            tagged.put(FLOAT, f);
        }
        else if (v instanceof BigDecimal d) {
            tagged.put(DECIMAL, d.toPlainString());
        }
        else if (v instanceof Date d) {
            tagged.put(TIMESTAMP, d.getTime());
        }
        else {
            // The sink only publishes the types above; anything else is kept as its text rather than lost.
            return JSON.getNodeFactory().textNode(String.valueOf(v));
        }
        return tagged;
    }

    private static Object value(JsonNode v) {
        if (v.isNull()) {
            return null;
        }
        if (v.isBoolean()) {
            return v.booleanValue();
        }
        if (v.isInt()) {
            return v.intValue();
        }
        if (v.isObject() && v.size() == 1) {
            String tag = v.fieldNames().next();
            JsonNode x = v.get(tag);
            switch (tag) {
                case BYTES:
                    return Base64.getDecoder().decode(x.asText());
                case LONG:
                    return x.asLong();
                case SHORT:
                    return (short) x.asInt();
                case BYTE:
                    return (byte) x.asInt();
                case DOUBLE:
                    return x.asDouble();
                case FLOAT:
                    return (float) x.asDouble();
                case DECIMAL:
                    return new BigDecimal(x.asText());
                case TIMESTAMP:
                    return new Date(x.asLong());
                default:
                    break;
            }
        }
        return v.isValueNode() ? v.asText() : v.toString();
    }

    private static String text(JsonNode node, String field) {
        JsonNode v = node.get(field);
        return v == null || v.isNull() ? null : v.asText();
    }

    private static String write(JsonNode node) {
        try {
            return JSON.writeValueAsString(node);
        }
        catch (JsonProcessingException e) {
            // Only a bug in Jackson could get here: the tree holds nothing but JSON nodes.
            throw new IllegalStateException(e);
        }
    }
}
