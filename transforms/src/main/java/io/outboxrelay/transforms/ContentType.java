package io.outboxrelay.transforms;

import org.apache.kafka.connect.data.Schema;

import io.debezium.data.Json;

/** The AMQP content-type implied by the payload's Connect schema. */
final class ContentType {

    static final String JSON = "application/json";
    static final String TEXT = "text/plain; charset=utf-8";
    static final String BINARY = "application/octet-stream";

    private ContentType() {
    }

    static String of(Schema payloadSchema) {
        if (payloadSchema == null) {
            return null;
        }
        if (Json.LOGICAL_NAME.equals(payloadSchema.name())) {
            return JSON;
        }
        return switch (payloadSchema.type()) {
            case STRUCT, ARRAY, MAP -> JSON;
            case BYTES -> BINARY;
            default -> TEXT;
        };
    }
}
