package io.outboxrelay.metrics;

/** What the relay's gauges read of the running engine and sink; the engine's supervisor answers. */
public interface RelayState {

    /** Whether the engine streams from the slot right now. */
    boolean streaming();

    /** The broker's reason while it blocks the connection (a resource alarm), or null. */
    String brokerBlockedReason();

    /** Messages published and awaiting their confirm. */
    int inFlight();

    /** Body bytes of the messages published and not yet marked processed. */
    long heldBytes();

    /** Whether the dead-letter table refuses a row right now. */
    boolean deadLetterFailing();

    /** How far behind its source commit the oldest event not yet delivered or parked is. */
    double secondsBehindSource();
}
