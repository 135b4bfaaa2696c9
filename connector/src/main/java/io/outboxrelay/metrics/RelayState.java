package io.outboxrelay.metrics;

/** What the relay's gauges read of the running engine and sink; the engine's supervisor answers. */
public interface RelayState {

    /** Whether this process holds the lease (relay.standby). */
    boolean leader();

    /** The lease's epoch this process holds or last held; 0 before the first. */
    long leaderEpoch();

    /** How many times this process became leader or stepped down. */
    long leadershipChanges();

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
