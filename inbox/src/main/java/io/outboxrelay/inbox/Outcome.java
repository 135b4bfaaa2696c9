package io.outboxrelay.inbox;

/** What {@link Inbox#process} did with a message; it has always acknowledged, requeued or rejected it. */
public enum Outcome {
    /** The handler ran and its transaction committed; then the message was acknowledged. */
    PROCESSED,
    /** Its id was already recorded for this consumer: the handler did not run; the message was acknowledged. */
    DUPLICATE,
    /** The handler failed (within its attempts) or the database could not be used: nacked with requeue after a back-off. */
    REQUEUED,
    /** No message id, or the handler failed on every attempt: rejected without requeue, so the queue's dead-letter exchange gets it. */
    REJECTED
}
