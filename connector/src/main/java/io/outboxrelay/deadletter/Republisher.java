package io.outboxrelay.deadletter;

import java.io.IOException;
import java.util.BitSet;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.TimeoutException;

import io.outboxrelay.message.OutgoingMessage;

/** Where {@link DeadLetterRedriver} publishes parked messages again: a RabbitMQ exchange, or a stream. */
public interface Republisher extends AutoCloseable {

    /** One message to publish again; {@code publishingId} is the stream's de-duplication id (unused over AMQP). */
    record Message(OutgoingMessage message, long publishingId) {
    }

    /**
     * Publishes {@code batch} in order and waits until the broker settled each; returns the
     * positions in {@code batch} of the messages it did not take (returned as unroutable, nacked
     * or refused), so that every other one is marked re-driven. A throw leaves the whole batch
     * parked.
     */
    BitSet publish(List<Message> batch) throws IOException, TimeoutException, InterruptedException;

    /**
     * Whether a message published twice with the same publishing id is stored once (a stream's
     * named producer): then ids are given before publishing, and kept.
     */
    boolean deduplicates();

    /** The broker's highest publishing id of the re-drive producer on {@code destinations}; 0 when it has none (or does not de-duplicate). */
    long lastPublishingId(Collection<String> destinations) throws IOException;

    @Override
    void close() throws IOException;
}
