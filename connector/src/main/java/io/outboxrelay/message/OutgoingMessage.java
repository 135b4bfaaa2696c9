package io.outboxrelay.message;

import com.rabbitmq.client.AMQP;

/**
 * One message as it goes on the wire, for either sink: the destination (an exchange over AMQP, a
 * stream or super stream over the stream protocol), the routing key, the properties and the body.
 * It sits below both the sinks and the dead-letter redrive, which both publish it.
 */
public record OutgoingMessage(String destination, String routingKey, AMQP.BasicProperties properties, byte[] body) {

    public String messageId() {
        return properties.getMessageId();
    }
}
