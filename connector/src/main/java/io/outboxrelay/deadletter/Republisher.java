package io.outboxrelay.deadletter;

import java.io.IOException;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeoutException;

import io.outboxrelay.sink.OutgoingMessage;

/** Where {@link DeadLetterRedriver} publishes parked messages again: a RabbitMQ exchange, or a stream. */
public interface Republisher extends AutoCloseable {

    /**
     * Publishes {@code batch} and waits until the broker settled each; returns the message ids it
     * did not take (returned as unroutable, or refused). A throw leaves the whole batch parked.
     */
    Set<String> publish(List<OutgoingMessage> batch) throws IOException, TimeoutException, InterruptedException;

    @Override
    void close() throws IOException;
}
