package io.outboxrelay.deadletter;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeoutException;

import com.rabbitmq.client.AMQP;

import io.outboxrelay.config.DatabaseSettings;
import io.outboxrelay.sink.OutgoingMessage;

/**
 * Publishes parked events again, exactly as they were first published (exchange or stream, routing
 * key, body, properties, message id), through a {@link Republisher} that waits for the broker's
 * confirms; an event is marked re-driven only after the broker confirmed it and did not return or
 * refuse it. Run while the cause is fixed (a binding added, a stream made, a consumer deployed);
 * the relay itself may keep running.
 */
public final class DeadLetterRedriver {

    private static final int PAGE = 500;

    private final DatabaseSettings database;
    private final String table;
    private final String relayName;

    public DeadLetterRedriver(DatabaseSettings database, String table, String relayName) {
        this.database = database;
        this.table = table;
        this.relayName = relayName;
    }

    public RedriveResult redrive(Redrive which, Republisher republisher) throws SQLException, IOException, TimeoutException, InterruptedException {
        List<String> republished = new ArrayList<>();
        List<String> unroutable = new ArrayList<>();
        List<String> notRedrivable = new ArrayList<>();
        try (Connection db = database.connect("outbox-relay redrive")) {
            long afterId = 0;
            while (true) {
                List<Parked> page = page(db, which, afterId);
                if (page.isEmpty()) {
                    break;
                }
                afterId = page.get(page.size() - 1).id;
                List<Parked> sent = new ArrayList<>();
                for (Parked p : page) {
                    if (p.properties == null) {
                        notRedrivable.add(p.eventId + ": " + p.reason);
                    }
                    else {
                        sent.add(p);
                    }
                }
                Set<String> notTaken = republisher.publish(sent.stream()
                        .map(p -> new OutgoingMessage(p.exchange, p.routingKey, p.properties, p.payload)).toList());
                List<Long> confirmed = new ArrayList<>();
                for (Parked p : sent) {
                    if (notTaken.contains(p.properties.getMessageId())) {
                        unroutable.add(p.eventId);
                    }
                    else {
                        confirmed.add(p.id);
                        republished.add(p.eventId);
                    }
                }
                markRedriven(db, confirmed);
            }
        }
        return new RedriveResult(republished, unroutable, notRedrivable);
    }

    private List<Parked> page(Connection db, Redrive which, long afterId) throws SQLException, IOException {
        StringBuilder sql = new StringBuilder("SELECT id, event_id, reason, exchange, routing_key, payload, headers::text FROM ")
                .append(table).append(" WHERE relay_name = ? AND redriven_at IS NULL AND id > ?");
        if (!which.eventIds().isEmpty()) {
            sql.append(" AND event_id = ANY (?)");
        }
        if (which.reasonContains() != null) {
            sql.append(" AND strpos(reason, ?) > 0");
        }
        sql.append(" ORDER BY id LIMIT ").append(PAGE);
        List<Parked> rows = new ArrayList<>();
        try (PreparedStatement ps = db.prepareStatement(sql.toString())) {
            int i = 1;
            ps.setString(i++, relayName);
            ps.setLong(i++, afterId);
            if (!which.eventIds().isEmpty()) {
                Array ids = db.createArrayOf("text", which.eventIds().toArray());
                ps.setArray(i++, ids);
            }
            if (which.reasonContains() != null) {
                ps.setString(i, which.reasonContains());
            }
            try (ResultSet rs = ps.executeQuery()) {
                while (rs.next()) {
                    rows.add(new Parked(rs.getLong(1), rs.getString(2), rs.getString(3), rs.getString(4), rs.getString(5),
                            rs.getBytes(6), DeadLetterCodec.decode(rs.getString(7))));
                }
            }
        }
        return rows;
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

    private record Parked(long id, String eventId, String reason, String exchange, String routingKey, byte[] payload,
                          AMQP.BasicProperties properties) {
        Parked {
            payload = payload == null ? "".getBytes(StandardCharsets.UTF_8) : payload;
        }
    }
}
