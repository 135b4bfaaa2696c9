package io.outboxrelay.deadletter;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.BitSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeoutException;
import java.util.function.Consumer;

import com.rabbitmq.client.AMQP;

import io.outboxrelay.config.DatabaseSettings;
import io.outboxrelay.message.OutgoingMessage;

/**
 * Publishes parked events again, exactly as they were first published (exchange or stream, routing
 * key, body, properties, message id), through a {@link Republisher} that waits for the broker's
 * confirms; each event is marked re-driven once the broker confirmed it and did not return or
 * refuse it, the others of its page staying parked. Run while the cause is fixed (a binding added,
 * a stream made, a consumer deployed); the relay itself may keep running.
 * <p>
 * One re-drive of a relay at a time: a second one waits for the first (a PostgreSQL advisory lock
 * held by the re-drive's connection, so a re-drive that dies lets go of it), then finds what the
 * first left. Events go out in the order they were parked, which is source order.
 * <p>
 * Into a stream each event gets its publishing id before it is published: ids above the broker's
 * last id of the re-drive's producer are written into the rows in a committed statement first, so
 * a re-drive cut off anywhere and run again publishes those rows with the same ids, and the broker
 * drops what it already stored. A later run first finishes the rows an earlier one gave ids to,
 * whatever it was asked for: anything published after them with higher ids would have the broker
 * drop them; a row the broker refused gives its id up and takes a new one the next time, since
 * what was stored after it would have the broker drop it. Over AMQP a re-drive cut off between the
 * confirms and the marks publishes that page again, with the original message ids.
 */
public final class DeadLetterRedriver {

    private static final int PAGE = 500;
    /** The advisory lock's first key: which kind of lock this is. The second is the relay and table's. */
    private static final String LOCK_CLASS = "outbox-relay redrive";

    private static final String DISCARDED_PREFIX = "discarded by redrive --discard: ";

    private final DatabaseSettings database;
    private final String table;
    private final String relayName;
    private final boolean keepAggregate;

    /** @param keepAggregate relay.dead-letter.order=keep-aggregate: an aggregate's events go out in order, and none after one that stays parked */
    public DeadLetterRedriver(DatabaseSettings database, String table, String relayName, boolean keepAggregate) {
        this.database = database;
        this.table = table;
        this.relayName = relayName;
        this.keepAggregate = keepAggregate;
    }

    /** {@code waiting} is told once when another re-drive of this relay runs and this one waits for it. */
    public RedriveResult redrive(Redrive which, Republisher republisher, Consumer<String> waiting)
            throws SQLException, IOException, TimeoutException, InterruptedException {
        List<String> republished = new ArrayList<>();
        List<String> unroutable = new ArrayList<>();
        List<String> notRedrivable = new ArrayList<>();
        List<String> discarded = List.of();
        long heldBack = 0;
        try (Connection db = database.connect("outbox-relay redrive")) {
            db.setAutoCommit(true);
            boolean hasColumn = DeadLetterTable.ensure(db, table);
            if (!hasColumn && republisher.deduplicates()) {
                throw new SQLException(DeadLetterTable.missingColumn(table));
            }
            String publishingId = hasColumn ? "coalesce(redrive_publishing_id, 0)" : "0";
            lock(db, waiting);
            if (which.discard()) {
                discarded = discard(db, which.eventIds());
            }
            Set<Long> tried = new LinkedHashSet<>();
            /* keep-aggregate: the aggregates (and rows) that stay parked in this pass; nothing of theirs after them goes out. */
            Set<String> stuckAggregates = new LinkedHashSet<>();
            // First what an earlier re-drive gave publishing ids to and did not finish, then what was asked for.
            for (boolean unfinished : new boolean[] { true, false }) {
                if (unfinished && !republisher.deduplicates()) {
                    continue;
                }
                long after = unfinished ? Long.MIN_VALUE : 0;
                while (true) {
                    boolean ordered = keepAggregate && !unfinished;
                    List<Parked> page = ordered ? heads(db, which, tried, stuckAggregates, publishingId) : page(db, which, unfinished, after, publishingId);
                    if (page.isEmpty() && ordered) {
                        // The last look, under the held lock taken exclusively: a held event the relay is writing now is either seen
                        // here, or finds its aggregate released and is published by the relay.
                        page = lastHeads(db, which, tried, stuckAggregates, publishingId);
                    }
                    if (page.isEmpty()) {
                        break;
                    }
                    after = unfinished ? page.get(page.size() - 1).publishingId : page.get(page.size() - 1).id;
                    List<Parked> sent = new ArrayList<>();
                    for (Parked p : page) {
                        if (!tried.add(p.id)) {
                            continue;
                        }
                        if (p.properties == null) {
                            notRedrivable.add(p.eventId + ": " + p.reason);
                            stuck(stuckAggregates, p);
                        }
                        else {
                            sent.add(p);
                        }
                    }
                    if (sent.isEmpty()) {
                        continue;
                    }
                    if (republisher.deduplicates()) {
                        sent = numbered(db, sent, republisher);
                    }
                    BitSet notTaken = republisher.publish(sent.stream()
                            .map(p -> new Republisher.Message(new OutgoingMessage(p.exchange, p.routingKey, p.properties, p.payload), p.publishingId))
                            .toList());
                    List<Long> confirmed = new ArrayList<>();
                    List<Long> refused = new ArrayList<>();
                    for (int i = 0; i < sent.size(); i++) {
                        Parked p = sent.get(i);
                        if (notTaken.get(i)) {
                            unroutable.add(p.eventId);
                            refused.add(p.id);
                            stuck(stuckAggregates, p);
                        }
                        else {
                            confirmed.add(p.id);
                            republished.add(p.eventId);
                        }
                    }
                    markRedriven(db, confirmed);
                    if (republisher.deduplicates()) {
                        // Published again later, an id at or below what the broker stored since would be dropped: it takes a new one.
                        forgetPublishingIds(db, refused);
                    }
                }
            }
            heldBack = heldBack(db, stuckAggregates, tried);
        }
        return new RedriveResult(republished, unroutable, notRedrivable, discarded, heldBack);
    }

    private void lock(Connection db, Consumer<String> waiting) throws SQLException {
        try (PreparedStatement ps = db.prepareStatement("SELECT pg_try_advisory_lock(hashtext(?), hashtext(?))")) {
            ps.setString(1, LOCK_CLASS);
            ps.setString(2, table + " " + relayName);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                if (rs.getBoolean(1)) {
                    return;
                }
            }
        }
        waiting.accept("another redrive of relay '" + relayName + "' is running; waiting for it to finish (one at a time, so that none publishes "
                + "what the other does)");
        try (PreparedStatement ps = db.prepareStatement("SELECT pg_advisory_lock(hashtext(?), hashtext(?))")) {
            ps.setString(1, LOCK_CLASS);
            ps.setString(2, table + " " + relayName);
            ps.execute();
        }
    }

    /**
     * Gives the rows without a publishing id the next ids, above the broker's last one and any an
     * earlier re-drive gave, and stores them before anything is published (autocommit).
     */
    private List<Parked> numbered(Connection db, List<Parked> sent, Republisher republisher) throws SQLException, IOException {
        if (sent.stream().allMatch(p -> p.publishingId > 0)) {
            return sent;
        }
        long next = republisher.lastPublishingId(sent.stream().map(p -> p.exchange).distinct().toList());
        try (PreparedStatement ps = db.prepareStatement("SELECT coalesce(max(redrive_publishing_id), 0) FROM " + table + " WHERE relay_name = ?")) {
            ps.setString(1, relayName);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                next = Math.max(next, rs.getLong(1));
            }
        }
        List<Parked> numbered = new ArrayList<>(sent.size());
        List<Long> ids = new ArrayList<>();
        List<Long> publishingIds = new ArrayList<>();
        for (Parked p : sent) {
            if (p.publishingId > 0) {
                numbered.add(p);
                continue;
            }
            Parked n = p.withPublishingId(++next);
            numbered.add(n);
            ids.add(n.id);
            publishingIds.add(n.publishingId);
        }
        try (PreparedStatement ps = db.prepareStatement("UPDATE " + table + " t SET redrive_publishing_id = n.pid FROM unnest(?::bigint[], ?::bigint[]) "
                + "AS n(id, pid) WHERE t.id = n.id")) {
            ps.setArray(1, db.createArrayOf("bigint", ids.toArray()));
            ps.setArray(2, db.createArrayOf("bigint", publishingIds.toArray()));
            ps.executeUpdate();
        }
        return numbered;
    }

    /** {@code publishingId}: the column's expression, or 0 where the table has none and the republisher needs none. */
    private List<Parked> page(Connection db, Redrive which, boolean unfinished, long after, String publishingId) throws SQLException, IOException {
        StringBuilder sql = new StringBuilder("SELECT id, event_id, reason, exchange, routing_key, payload, headers::text, " + publishingId + " FROM ")
                .append(table).append(" WHERE relay_name = ? AND redriven_at IS NULL");
        if (unfinished) {
            sql.append(" AND redrive_publishing_id > ? ORDER BY redrive_publishing_id");
        }
        else {
            sql.append(" AND id > ?");
            if (!which.eventIds().isEmpty()) {
                sql.append(" AND event_id = ANY (?)");
            }
            if (which.reasonContains() != null) {
                sql.append(" AND strpos(reason, ?) > 0");
            }
            sql.append(" ORDER BY id");
        }
        sql.append(" LIMIT ").append(PAGE);
        List<Parked> rows = new ArrayList<>();
        try (PreparedStatement ps = db.prepareStatement(sql.toString())) {
            int i = 1;
            ps.setString(i++, relayName);
            ps.setLong(i++, after);
            if (!unfinished && !which.eventIds().isEmpty()) {
                Array ids = db.createArrayOf("text", which.eventIds().toArray());
                ps.setArray(i++, ids);
            }
            if (!unfinished && which.reasonContains() != null) {
                ps.setString(i, which.reasonContains());
            }
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    rows.add(parked(rs, null));
                }
            }
        }
        return rows;
    }

    /** The rows of the aggregates that stay parked which this pass did not try: they wait behind the ones that stayed. */
    private long heldBack(Connection db, Set<String> stuckAggregates, Set<Long> tried) throws SQLException {
        if (stuckAggregates.isEmpty()) {
            return 0;
        }
        try (PreparedStatement ps = db.prepareStatement("SELECT count(*) FROM " + table
                + " WHERE relay_name = ? AND redriven_at IS NULL AND aggregate_id = ANY (?) AND NOT (id = ANY (?))")) {
            ps.setString(1, relayName);
            ps.setArray(2, db.createArrayOf("text", stuckAggregates.toArray()));
            ps.setArray(3, db.createArrayOf("bigint", tried.toArray()));
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getLong(1);
            }
        }
    }

    private static void stuck(Set<String> stuckAggregates, Parked p) {
        if (p.aggregateId != null) {
            stuckAggregates.add(p.aggregateId);
        }
    }

    /**
     * keep-aggregate: of each aggregate the first row still parked, when it was asked for (or is
     * held behind one that is gone), it has not been tried in this pass and its aggregate is not
     * stuck; at most one row per aggregate, so that a return cannot be overtaken by the next event
     * of its aggregate. Rows without an aggregate id each stand alone.
     */
    private List<Parked> heads(Connection db, Redrive which, Set<Long> tried, Set<String> stuckAggregates, String publishingId)
            throws SQLException, IOException {
        StringBuilder sql = new StringBuilder("SELECT id, event_id, reason, exchange, routing_key, payload, headers, pid, aggregate_id FROM (")
                .append("SELECT DISTINCT ON (aggregate_id IS NULL, coalesce(aggregate_id, id::text)) id, event_id, reason, exchange, routing_key, ")
                .append("payload, headers::text AS headers, ").append(publishingId).append(" AS pid, aggregate_id FROM ").append(table)
                .append(" WHERE relay_name = ? AND redriven_at IS NULL ORDER BY aggregate_id IS NULL, coalesce(aggregate_id, id::text), id) first")
                .append(" WHERE NOT (id = ANY (?)) AND (aggregate_id IS NULL OR NOT (aggregate_id = ANY (?)))");
        StringBuilder asked = new StringBuilder("true");
        if (!which.eventIds().isEmpty()) {
            asked.append(" AND event_id = ANY (?)");
        }
        if (which.reasonContains() != null) {
            asked.append(" AND strpos(reason, ?) > 0");
        }
        sql.append(" AND (strpos(reason, ?) = 1 OR (").append(asked).append(")) ORDER BY id LIMIT ").append(PAGE);
        List<Parked> rows = new ArrayList<>();
        try (PreparedStatement ps = db.prepareStatement(sql.toString())) {
            int i = 1;
            ps.setString(i++, relayName);
            ps.setArray(i++, db.createArrayOf("bigint", tried.toArray()));
            ps.setArray(i++, db.createArrayOf("text", stuckAggregates.toArray()));
            ps.setString(i++, DeadLetterTable.HELD_PREFIX);
            if (!which.eventIds().isEmpty()) {
                ps.setArray(i++, db.createArrayOf("text", which.eventIds().toArray()));
            }
            if (which.reasonContains() != null) {
                ps.setString(i, which.reasonContains());
            }
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    rows.add(parked(rs, rs.getString(9)));
                }
            }
        }
        return rows;
    }

    /** {@link #heads} once more, holding the held lock exclusively: the relay's writes of held events wait, and the ones before are seen. */
    private List<Parked> lastHeads(Connection db, Redrive which, Set<Long> tried, Set<String> stuckAggregates, String publishingId)
            throws SQLException, IOException {
        db.setAutoCommit(false);
        try {
            DeadLetterTable.lockHeld(db, table, relayName, true);
            List<Parked> rows = heads(db, which, tried, stuckAggregates, publishingId);
            db.commit();
            return rows;
        }
        finally {
            db.setAutoCommit(true);
        }
    }

    /** Marks the parked rows of {@code eventIds} discarded (re-driven without publishing, the reason saying so); returns their event ids. */
    private List<String> discard(Connection db, List<String> eventIds) throws SQLException {
        List<String> done = new ArrayList<>();
        try (PreparedStatement ps = db.prepareStatement("UPDATE " + table + " SET redriven_at = now(), reason = ? || reason "
                + "WHERE relay_name = ? AND redriven_at IS NULL AND event_id = ANY (?) RETURNING event_id")) {
            ps.setString(1, DISCARDED_PREFIX);
            ps.setString(2, relayName);
            ps.setArray(3, db.createArrayOf("text", eventIds.toArray()));
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    done.add(rs.getString(1));
                }
            }
        }
        return done;
    }

    private static Parked parked(ResultSet rs, String aggregateId) throws SQLException, IOException {
        return new Parked(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5), rs.getBytes(6),
                DeadLetterCodec.decode(rs.getString(7)), rs.getLong(8), aggregateId);
    }

    private void markRedriven(Connection db, List<Long> ids) throws SQLException {
        if (ids.isEmpty()) {
            return;
        }
        try (PreparedStatement ps = db.prepareStatement("UPDATE " + table + " SET redriven_at = now() WHERE id = ANY (?)")) {
            ps.setArray(1, db.createArrayOf("bigint", ids.toArray()));
            ps.executeUpdate();
        }
    }

    private void forgetPublishingIds(Connection db, List<Long> ids) throws SQLException {
        if (ids.isEmpty()) {
            return;
        }
        try (PreparedStatement ps = db.prepareStatement("UPDATE " + table + " SET redrive_publishing_id = NULL WHERE id = ANY (?)")) {
            ps.setArray(1, db.createArrayOf("bigint", ids.toArray()));
            ps.executeUpdate();
        }
    }

    private record Parked(long id, String eventId, String reason, String exchange, String routingKey, byte[] payload,
                          AMQP.BasicProperties properties, long publishingId, String aggregateId) {
        Parked {
            payload = payload == null ? "".getBytes(StandardCharsets.UTF_8) : payload;
        }

        Parked withPublishingId(long pid) {
            return new Parked(id, eventId, reason, exchange, routingKey, payload, properties, pid, aggregateId);
        }
    }
}
