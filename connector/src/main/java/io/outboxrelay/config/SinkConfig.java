package io.outboxrelay.config;

import java.time.Duration;
import java.util.Map;

import io.outboxrelay.credentials.Password;

/**
 * The RabbitMQ sink's settings: every key of Debezium Server's RabbitMQ sink with its meaning and
 * default, plus this project's own keys in the same {@code debezium.sink.rabbitmq.} namespace.
 *
 * @param password   {@code connection.password}, kept as its secrets-directory file when it came from one (read at every connection)
 * @param connection {@code connection.*} keys without the prefix, for amqp-client's {@code ConnectionFactoryConfigurator}
 */
public record SinkConfig(
        Map<String, String> connection,
        String exchange,
        String routingKey,
        RoutingKeySource routingKeySource,
        boolean autoCreateRoutingKey,
        boolean routingKeyDurable,
        int deliveryMode,
        Duration ackTimeout,
        String nullValue,
        int maxInFlight,
        long maxInFlightBytes,
        int maxMessageBytes,
        Duration retryBackoffInitial,
        Duration retryBackoffMax,
        boolean saslExternal,
        Password password) {

    public static final String PREFIX = "debezium.sink.rabbitmq.";

    public Delivery delivery() {
        return new Delivery(PREFIX, ackTimeout, PREFIX + "ackTimeout", maxInFlight, maxInFlightBytes, maxMessageBytes, retryBackoffInitial, retryBackoffMax);
    }

    public enum RoutingKeySource {
        STATIC, TOPIC, KEY
    }
}
