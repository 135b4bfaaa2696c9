package io.outboxrelay.sink;

import com.rabbitmq.client.AMQP;

/** One AMQP publish: where to, with which properties, and the body. */
public record OutgoingMessage(String exchange, String routingKey, AMQP.BasicProperties properties, byte[] body) {

    public String messageId() {
        return properties.getMessageId();
    }
}
