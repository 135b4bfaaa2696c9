package io.outboxrelay.monitor;

/**
 * A replication slot as PostgreSQL reports it.
 *
 * @param lagBytes WAL written since the slot's confirmed flush position: what the relay has yet to acknowledge
 * @param retainedBytes WAL the server keeps for the slot (from its restart position): what fills the disk
 * @param walStatus {@code reserved}, {@code extended}, {@code unreserved} or {@code lost}
 * @param consumer who is connected to the slot ({@code application_name@client_addr}), or null when none is
 */
public record SlotStatus(String name, boolean active, Integer activePid, String confirmedFlushLsn, String restartLsn,
                         long lagBytes, long retainedBytes, String walStatus, String consumer) {
}
