package io.outboxrelay.inbox;

import com.rabbitmq.client.AMQP;

/**
 * A delivered message as the handler sees it.
 *
 * @param messageId   the AMQP {@code message-id}: for outbox-relay, the outbox row's id, the same on every duplicate
 * @param redelivered whether the broker delivered it before (to this consumer or another)
 */
public record InboxMessage(String messageId, byte[] body, AMQP.BasicProperties properties, boolean redelivered) {
}
