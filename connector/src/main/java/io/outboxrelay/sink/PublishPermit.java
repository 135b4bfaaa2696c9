package io.outboxrelay.sink;

/**
 * Whether this process may publish right now: the sink asks before every single publish. Under a
 * lease the answer comes from {@code leader.Leadership}; a relay without standbys always may.
 */
@FunctionalInterface
public interface PublishPermit {

    enum Answer {
        /** Publish. */
        GRANTED,
        /** Not now: the lease was not renewed lately; publishing waits for the next renewal, or for the lease to end. */
        PAUSED,
        /** Never again: the lease was lost or ran out; the engine stops. */
        ENDED
    }

    PublishPermit ALWAYS = () -> Answer.GRANTED;

    Answer ask();
}
