package io.outboxrelay.inbox;

/**
 * What {@link Inbox#process} or {@link StreamInbox#process} did with a message: a queue's message
 * has always been acknowledged, requeued or rejected; a stream's position has always moved past it.
 */
public enum Outcome {
    /** The handler ran and its transaction committed; then the message was acknowledged (a stream's position moved in that commit). */
    PROCESSED,
    /** Its id was already recorded for this consumer (or, in a stream, its offset was already settled): the handler did not run. */
    DUPLICATE,
    /** Queues only: the handler failed (within its attempts) or the database could not be used: nacked with requeue after a back-off. */
    REQUEUED,
    /**
     * No message id, or the handler failed on every attempt: a queue's message is rejected without requeue, so the queue's
     * dead-letter exchange gets it; a stream's is recorded in the rejected table with its reason and body.
     */
    REJECTED
}
