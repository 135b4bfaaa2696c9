package io.outboxrelay.transforms;

import org.apache.kafka.connect.errors.DataException;

/** An outbox row that cannot become a message; the message is the reason an operator reads. */
public class InvalidOutboxEventException extends DataException {

    public InvalidOutboxEventException(String reason) {
        super(reason);
    }

    public InvalidOutboxEventException(String reason, Throwable cause) {
        super(reason, cause);
    }
}
