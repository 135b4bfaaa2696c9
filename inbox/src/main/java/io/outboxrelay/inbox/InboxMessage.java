package io.outboxrelay.inbox;

import java.util.Map;

/**
 * A delivered message as the handler sees it, the same for a queue and a stream.
 *
 * @param messageId     the message id: for outbox-relay, the outbox row's id, the same on every duplicate
 * @param type          the event type (AMQP {@code type}; a stream message's {@code subject})
 * @param headers       AMQP headers, or a stream message's application properties (text values as {@code String})
 * @param redelivered   whether the broker delivered it before (to this consumer or another); always false from a stream
 */
public record InboxMessage(String messageId, byte[] body, String type, String contentType, String correlationId, Map<String, Object> headers,
                           boolean redelivered) {

    public InboxMessage {
        headers = headers == null ? Map.of() : headers;
    }
}
