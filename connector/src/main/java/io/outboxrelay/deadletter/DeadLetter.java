package io.outboxrelay.deadletter;

/**
 * An event the relay parked instead of publishing: a message RabbitMQ returned as unroutable, or an
 * outbox row the router could not turn into a message.
 *
 * @param headersJson the AMQP properties and headers it had (or the Connect headers of an invalid row), as JSON
 */
public record DeadLetter(String eventId, String reason, String exchange, String routingKey, byte[] payload, String headersJson,
                         String sourceTopic, String aggregateId) {
}
