package io.outboxrelay.source;

/**
 * A replication slot as PostgreSQL reports it.
 *
 * @param lagBytes WAL written since the slot's confirmed flush position: what the relay has yet to acknowledge
 * @param retainedBytes WAL the server keeps for the slot (from its restart position): what fills the disk
 * @param walStatus {@code reserved}, {@code extended}, {@code unreserved} or {@code lost}
 * @param clientApplication the {@code application_name} of the client streaming from the slot, or null when none is
 * @param clientAddress where that client connects from ({@code host:port}, or "a local socket"), or null
 * @param plugin the output plugin the slot was made for
 * @param database the database the slot belongs to
 */
public record SlotStatus(String name, boolean active, Integer activePid, String confirmedFlushLsn, String restartLsn,
                         long lagBytes, long retainedBytes, String walStatus, String clientApplication, String clientAddress,
                         String plugin, String database) {

    /**
     * Who holds the slot, for a person deciding what to stop: the PID is PostgreSQL's walsender,
     * not the client, so killing that process would only cut the connection; the client is named
     * by its application name and address.
     */
    public String holder() {
        if (!active) {
            return "nobody";
        }
        String client = clientApplication == null || clientApplication.isEmpty() ? "a client that gave no application_name" : "'" + clientApplication + "'";
        return client + " connected from " + (clientAddress == null ? "an unknown address" : clientAddress)
                + " (served by PostgreSQL's walsender, PID " + activePid + ")";
    }

    /** The client's application name and address in one short form, or null when none streams. */
    public String consumer() {
        return active ? (clientApplication == null ? "?" : clientApplication) + "@" + (clientAddress == null ? "?" : clientAddress) : null;
    }
}
