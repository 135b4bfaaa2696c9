package io.outboxrelay.inbox;

import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;

import io.outboxrelay.testing.TestDatabase;

/**
 * The consumers' effect in the inbox tests: a row per processing, deliberately without a unique
 * key, so that only the inbox keeps it to one per event.
 */
final class Effects {

    static final String DDL = "CREATE TABLE effects (consumer text NOT NULL, event_id text NOT NULL, at timestamptz DEFAULT now())";

    private Effects() {
    }

    static InboxHandler of(String consumer) {
        return (tx, m) -> {
            try (PreparedStatement ps = tx.prepareStatement("INSERT INTO effects (consumer, event_id) VALUES (?, ?)")) {
                ps.setString(1, consumer);
                ps.setString(2, m.messageId());
                ps.executeUpdate();
            }
        };
    }

    /** How many effects {@code consumer} has for ids LIKE {@code whereIdLike}. */
    static int count(TestDatabase db, String consumer, String whereIdLike) throws SQLException {
        try (Connection c = db.connect(); PreparedStatement ps = c.prepareStatement("SELECT count(*) FROM effects WHERE consumer = ? AND event_id LIKE ?")) {
            ps.setString(1, consumer);
            ps.setString(2, whereIdLike);
            try (ResultSet rs = ps.executeQuery()) {
                rs.next();
                return rs.getInt(1);
            }
        }
    }
}
