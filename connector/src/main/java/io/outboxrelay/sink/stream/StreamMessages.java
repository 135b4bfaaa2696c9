package io.outboxrelay.sink.stream;

import java.math.BigDecimal;
import java.util.Date;

import com.rabbitmq.client.AMQP;
import com.rabbitmq.stream.Message;
import com.rabbitmq.stream.MessageBuilder;
import io.outboxrelay.message.OutgoingMessage;

/** One mapping from the message the AMQP sink would publish to the one a stream stores: for the stream sink and for redrive. */
public final class StreamMessages {

    private StreamMessages() {
    }

    /**
     * What the AMQP sink puts in properties and headers, in the AMQP 1.0 message a stream stores,
     * built on {@code b} (a producer's builder, with a publishing id where there is one).
     */
    public static Message of(MessageBuilder b, OutgoingMessage m) {
        AMQP.BasicProperties props = m.properties();
        MessageBuilder.PropertiesBuilder properties = b.properties();
        if (props.getMessageId() != null) {
            properties.messageId(props.getMessageId());
        }
        if (props.getCorrelationId() != null) {
            properties.correlationId(props.getCorrelationId());
        }
        if (props.getContentType() != null) {
            properties.contentType(props.getContentType());
        }
        if (props.getType() != null) {
            properties.subject(props.getType());
        }
        properties.groupId(m.routingKey());
        if (props.getTimestamp() != null) {
            properties.creationTime(props.getTimestamp().getTime());
        }
        MessageBuilder.ApplicationPropertiesBuilder app = b.applicationProperties();
        if (props.getType() != null) {
            app.entry("type", props.getType());
        }
        if (props.getAppId() != null) {
            app.entry("app-id", props.getAppId());
        }
        if (props.getHeaders() != null) {
            props.getHeaders().forEach((k, v) -> entry(app, k, v));
        }
        return b.addData(m.body()).build();
    }

    private static void entry(MessageBuilder.ApplicationPropertiesBuilder app, String key, Object v) {
        if (v instanceof String s) {
            app.entry(key, s);
        }
        else if (v instanceof Long l) {
            app.entry(key, (long) l);
        }
        else if (v instanceof Integer i) {
            app.entry(key, (int) i);
        }
        else if (v instanceof Short s) {
            app.entry(key, (short) s);
        }
        else if (v instanceof Byte by) {
            app.entry(key, (byte) by);
        }
        else if (v instanceof Boolean bo) {
            app.entry(key, (boolean) bo);
        }
        else if (v instanceof Double d) {
            app.entry(key, (double) d);
        }
        else if (v instanceof Float f) {
            app.entry(key, (float) f);
        }
        else if (v instanceof byte[] bytes) {
            app.entry(key, bytes);
        }
        else if (v instanceof Date d) {
            app.entryTimestamp(key, d.getTime());
        }
        else if (v instanceof BigDecimal d) {
            app.entry(key, d.toPlainString());
        }
        else if (v != null) {
            app.entry(key, String.valueOf(v));
        }
    }

}
