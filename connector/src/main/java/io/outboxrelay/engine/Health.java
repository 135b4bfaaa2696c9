package io.outboxrelay.engine;

/** What the probes ask of the relay. */
public interface Health {

    /** False once the relay has stopped for good: the process should be restarted. */
    boolean live();

    /** Why the relay is not ready (not streaming, the broker blocking, reconnecting), or null when it is. */
    String notReadyReason();

    /** Whether this process leads its relay (always, without standbys). */
    boolean leads();
}
