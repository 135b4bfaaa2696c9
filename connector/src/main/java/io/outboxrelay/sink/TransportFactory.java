package io.outboxrelay.sink;

/** Opens the {@link Transport} a sink publishes through, given the tracker its confirms report to. */
@FunctionalInterface
public interface TransportFactory {

    /**
     * @param watermark the last publishing id the stream already holds, or -1 when there is none (and for AMQP,
     *                  which numbers nothing)
     */
    Transport open(ConfirmTracker tracker, long watermark);
}
