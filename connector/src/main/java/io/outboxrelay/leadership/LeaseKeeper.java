package io.outboxrelay.leadership;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.sql.Connection;
import java.sql.SQLException;
import java.time.Duration;
import java.time.format.DateTimeFormatter;
import java.util.Optional;
import java.util.UUID;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import io.outboxrelay.config.DatabaseSettings;
import io.outboxrelay.config.RelaySettings;
import io.outboxrelay.database.ConnectionFailure;
import io.outboxrelay.database.ReopeningConnection;
import io.outboxrelay.offsetstore.LeaseTable;
import io.outboxrelay.offsetstore.PostgresOffsetStoreConfig;
import io.outboxrelay.source.SlotStatus;
import io.outboxrelay.source.SourceInspector;

/**
 * The thread that contends for the lease and keeps it: every {@code relay.leader.renew.ms} the
 * leader renews, a standby tries to take it over, and both record themselves as members. What it
 * learns goes to {@link Leadership}; it never decides anything the database did not say, except
 * that a lease which could not be renewed in time has run out.
 *
 * The lease lives in the offset store's database and is reached the way the store reaches it (its
 * URL may go through PgBouncer): the fence must be in the same database as the offsets. Whether
 * the slot is read is asked of the source database, where the slot is.
 */
public final class LeaseKeeper implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(LeaseKeeper.class);

    private final PostgresOffsetStoreConfig store;
    private final Duration socketTimeout;
    private final DatabaseSettings source;
    private final RelaySettings.Leadership settings;
    private final String name;
    private final String slot;
    private final Leadership leadership;
    private final LeaseTable table;
    private final String holder;
    private final String host;
    private final long pid;
    private final Thread thread;
    private volatile boolean stopping;
    private volatile String failure;
    /** Whether the pause of publishing for an overdue renewal was logged (once per pause). Keeper thread only. */
    private boolean pauseReported;

    public LeaseKeeper(PostgresOffsetStoreConfig store, DatabaseSettings source, RelaySettings.Leadership settings, String name, String slot,
                       Leadership leadership) {
        this.store = store;
        // A renewal stuck on a half-open connection must fail well inside the lease, so that the loss is noticed in time.
        this.socketTimeout = min(store.socketTimeout(), settings.lease().dividedBy(4));
        this.source = source;
        this.settings = settings;
        this.name = name;
        this.slot = slot;
        this.leadership = leadership;
        this.table = new LeaseTable(settings.table());
        this.host = hostName();
        this.pid = ProcessHandle.current().pid();
        this.holder = host + "/" + pid + "/" + UUID.randomUUID().toString().substring(0, 8);
        this.thread = new Thread(this::run, "outbox-relay-lease");
        this.thread.setDaemon(true);
    }

    /**
     * Creates the lease tables if they are missing. Fails saying why the database could not be
     * reached (TLS, a key file, the log-in, the network) or, once reached, with the statement a
     * least-privilege role's owner must run.
     */
    public void prepare() throws SQLException {
        Connection c;
        try {
            c = connect();
        }
        catch (SQLException e) {
            throw new SQLException("cannot reach the lease table " + table.table() + " in the offset store's database: "
                    + ConnectionFailure.describe(e, ConnectionFailure.OFFSET_STORE), e.getSQLState(), e);
        }
        try (c) {
            table.createIfMissing(c);
        }
        catch (SQLException e) {
            throw new SQLException("cannot prepare the lease table " + table.table() + " (relay.leader.table): " + e.getMessage()
                    + "; create it as deploy/sql/relay-role.sql does, or set relay.standby=false", e.getSQLState(), e);
        }
    }

    public void start() {
        thread.start();
    }

    /** Why the last round failed (PostgreSQL unreachable, say), or null. */
    public String failure() {
        return failure;
    }

    public LeaseTable table() {
        return table;
    }

    private Connection connect() throws SQLException {
        return store.connect("outbox-relay leader lease", socketTimeout);
    }

    private void run() {
        try (ReopeningConnection connection = new ReopeningConnection(this::connect); SourceInspector slots = new SourceInspector(source)) {
            while (!stopping) {
                round(connection, slots);
                sleep(settings.renew());
            }
        }
    }

    /** Whether nothing streams from the slot; unknown (the source unreachable) counts as read, so no early takeover. */
    private boolean slotIdle(SourceInspector slots) {
        try {
            SlotStatus status = slots.slot(slot);
            return status == null || !status.active();
        }
        catch (SQLException e) {
            return false;
        }
    }

    private void round(ReopeningConnection connection, SourceInspector slots) {
        if (!leadership.isLeader()) {
            pauseReported = false;
        }
        try {
            Connection c = connection.get();
            if (leadership.isLeader()) {
                long epoch = leadership.epoch();
                long sent = System.nanoTime();
                long overdue = leadership.millisSinceRenewal();
                if (table.renew(c, name, holder, epoch, settings.lease())) {
                    leadership.renewed(epoch, sent);
                    if (pauseReported) {
                        pauseReported = false;
                        LOG.info("Renewed the lease of relay '{}' (epoch {}) again, {} ms after the last renewal; publishing resumes", name, epoch, overdue);
                    }
                }
                else {
                    leadership.lost(epoch, "the lease was taken over (" + describe(table.read(c, name)) + ")");
                }
            }
            else if (leadership.contending()) {
                long sent = System.nanoTime();
                Optional<Long> epoch = table.acquire(c, name, holder, host, pid, settings.lease(), settings.silentFor(), slotIdle(slots));
                if (epoch.isPresent()) {
                    String previous = leadership.standingBy();
                    leadership.became(epoch.get(), sent, previous == null ? "no other relay held the lease"
                            : "took the lease over from " + previous + ", which stopped renewing it");
                }
                else {
                    String leader = describe(table.read(c, name));
                    if (!leader.equals(leadership.standingBy())) {
                        LOG.info("Standing by: relay '{}' is led by {}; taking over when its lease lapses", name, leader);
                    }
                    leadership.standingBy(leader);
                }
            }
            table.heartbeat(c, name, holder, host, pid, leadership.isLeader() ? "leader" : "standby");
            if (failure != null) {
                LOG.info("The lease table {} answers again", table.table());
            }
            failure = null;
        }
        catch (SQLException e) {
            String state = e.getSQLState() == null ? "" : e.getSQLState();
            if (state.isEmpty() || state.startsWith("08") || state.startsWith("57")) {
                // The connection is gone or going; an SQL error on a sound one (a missing grant) keeps it.
                connection.reset();
            }
            String now = "cannot use the lease table " + table.table() + " (relay.leader.table): "
                    + (state.startsWith("42") ? e.getMessage() : ConnectionFailure.describe(e, ConnectionFailure.OFFSET_STORE))
                    + (state.equals("42501") ? "; GRANT SELECT, INSERT, UPDATE, DELETE ON " + table.table() + ", " + table.membersTable() + " TO "
                            + store.user() + " (as deploy/sql/relay-role.sql does), or set relay.standby=false" : "");
            if (!now.equals(failure)) {
                LOG.warn("{}; retrying every {} ms", now, settings.renew().toMillis());
            }
            failure = now;
        }
        if (leadership.paused() && !pauseReported) {
            pauseReported = true;
            LOG.warn("The lease of relay '{}' was last renewed {} ms ago (relay.leader.renew.ms={}){}: publishing pauses until a renewal succeeds, since"
                    + " a standby may take over {} ms after the last renewal if the slot is idle (and at relay.leader.lease.ms={} in any case)", name,
                    leadership.millisSinceRenewal(), settings.renew().toMillis(), failure != null ? " (" + failure + ")" : "",
                    settings.silentFor().toMillis(), settings.lease().toMillis());
        }
        if (leadership.expiredLocally()) {
            leadership.lost(leadership.epoch(), "the lease was not renewed within relay.leader.lease.ms=" + settings.lease().toMillis()
                    + " by this process's clock" + (failure != null ? " (" + failure + ")" : " (was this process paused?)"));
        }
    }

    private String describe(Optional<LeaseTable.Lease> lease) {
        return lease.map(l -> l.host() + " pid " + l.pid() + " (epoch " + l.epoch() + ", since " + DateTimeFormatter.ISO_INSTANT.format(l.acquiredAt()) + ")")
                .orElse("nobody");
    }

    /** Stops contending; a leader gives its lease up so that a standby takes over at its next look rather than at the expiry. */
    @Override
    public void close() {
        stopping = true;
        thread.interrupt();
        try {
            thread.join(5_000);
        }
        catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        long epoch = leadership.epoch();
        boolean wasLeader = leadership.isLeader();
        leadership.resign();
        try (Connection c = connect()) {
            if (wasLeader) {
                table.release(c, name, holder, epoch);
                LOG.info("Released the lease of relay '{}' (epoch {}); a standby takes over at its next look", name, epoch);
            }
            table.leave(c, name, holder, settings.lease().multipliedBy(3));
        }
        catch (SQLException e) {
            LOG.warn("Cannot release the lease of relay '{}' ({}); a standby takes over when it expires", name, e.getMessage());
        }
    }

    private void sleep(Duration pause) {
        try {
            Thread.sleep(pause.toMillis());
        }
        catch (InterruptedException e) {
            // close() interrupts to stop at once.
        }
    }

    private static Duration min(Duration a, Duration b) {
        return a.compareTo(b) <= 0 ? a : b;
    }

    private static String hostName() {
        String env = System.getenv("HOSTNAME");
        if (env != null && !env.isBlank()) {
            return env;
        }
        try {
            return InetAddress.getLocalHost().getHostName();
        }
        catch (UnknownHostException e) {
            return "unknown-host";
        }
    }
}
