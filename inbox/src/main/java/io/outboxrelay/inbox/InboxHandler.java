package io.outboxrelay.inbox;

import java.sql.Connection;

/**
 * The consumer's effect, written through {@code transaction}: the same transaction that records the
 * message as processed, so that both commit or neither does. It must not commit, roll back or close
 * the connection; throwing rolls everything back.
 */
@FunctionalInterface
public interface InboxHandler {
    void handle(Connection transaction, InboxMessage message) throws Exception;
}
