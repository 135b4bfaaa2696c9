package io.outboxrelay.leader;

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
import io.outboxrelay.database.ReopeningConnection;
import io.outboxrelay.offsetstore.LeaseTable;

/**
 * The thread that contends for the lease and keeps it: every {@code relay.leader.renew.ms} the
 * leader renews, a standby tries to take it over, and both record themselves as members. What it
 * learns goes to {@link Leadership}; it never decides anything the database did not say, except
 * that a lease which could not be renewed in time has run out.
 */
public final class LeaseKeeper implements AutoCloseable {

    private static final Logger LOG = LoggerFactory.getLogger(LeaseKeeper.class);

    private final DatabaseSettings database;
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

    public LeaseKeeper(DatabaseSettings database, RelaySettings.Leadership settings, String name, String slot, Leadership leadership) {
        // A renewal stuck on a half-open connection must fail well inside the lease, so that the loss is noticed in time.
        Duration quarter = settings.lease().dividedBy(4);
        this.database = database.withTimeouts(min(database.connectTimeout(), quarter), min(database.socketTimeout(), quarter));
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

    /** Creates the lease tables if they are missing; fails with the statement a least-privilege role's owner must run. */
    public void prepare() throws SQLException {
        try (Connection c = database.connect("outbox-relay leader lease")) {
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

    private void run() {
        try (ReopeningConnection connection = new ReopeningConnection(database, "outbox-relay leader lease")) {
            while (!stopping) {
                round(connection);
                sleep(settings.renew());
            }
        }
    }

    private void round(ReopeningConnection connection) {
        try {
            Connection c = connection.get();
            if (leadership.isLeader()) {
                long epoch = leadership.epoch();
                long sent = System.nanoTime();
                if (table.renew(c, name, holder, epoch, settings.lease())) {
                    leadership.renewed(epoch, sent);
                }
                else {
                    leadership.lost(epoch, "the lease was taken over (" + describe(table.read(c, name)) + ")");
                }
            }
            else if (leadership.contending()) {
                long sent = System.nanoTime();
                Optional<Long> epoch = table.acquire(c, name, holder, host, pid, settings.lease(), settings.silentFor(), slot);
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
            connection.reset();
            if (failure == null) {
                LOG.warn("Cannot reach the lease table {} ({}); retrying every {} ms", table.table(), e.getMessage(), settings.renew().toMillis());
            }
            failure = "cannot reach the lease table " + table.table() + " (relay.leader.table): " + e.getMessage();
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
        try (Connection c = database.connect("outbox-relay leader lease")) {
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
