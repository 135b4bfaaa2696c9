package io.outboxrelay.replay;

import java.io.IOException;
import java.io.PrintWriter;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeoutException;
import java.util.regex.Pattern;

import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.transforms.Transformation;

import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.deadletter.Republisher;
import io.outboxrelay.sink.amqp.AmqpConnectionFactory;
import io.outboxrelay.sink.amqp.AmqpRepublisher;
import io.outboxrelay.sink.MessageMapper;
import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.transforms.OutboxHeaders;

/**
 * Publishes outbox rows still in the table again, with their original message ids and the current
 * routing: each row becomes the insert record the connector would have made, goes through the
 * configured transform chain and the sink's mapping, and is published with confirms and
 * {@code mandatory}. It reads the table with plain SQL and touches neither the relay's slot nor its
 * offsets, so it can run beside a running relay.
 */
public final class OutboxReplay {

    private static final Pattern PLAIN = Pattern.compile("[A-Za-z_][A-Za-z0-9_$]{0,62}");
    private static final int PAGE = 500;

    /** Which rows: each null means "any". */
    public record Selection(Instant since, Instant until, String aggregateType, String aggregateId, String type) {
    }

    /**
     * What was published: confirmed and routed; not taken (returned unroutable, or refused by a nack, which a queue's
     * {@code reject-publish} overflow sends); and rows the router would not turn into a message.
     */
    public record Result(int published, List<String> unroutable, List<String> invalid) {
    }

    private final RelayConfig config;
    private final String timeColumn;

    public OutboxReplay(RelayConfig config, String timeColumn) {
        if (!PLAIN.matcher(timeColumn).matches()) {
            throw new IllegalArgumentException("--time-column " + timeColumn + " is not a plain column name");
        }
        this.config = config;
        this.timeColumn = timeColumn;
    }

    /**
     * @param exchange  another exchange to publish to, or null for the current routing
     * @param progress  receives a line every page
     */
    public Result replay(Selection which, String exchange, boolean dryRun, PrintWriter progress)
            throws SQLException, IOException, TimeoutException, InterruptedException {
        List<Transformation<SourceRecord>> chain = transforms();
        MessageMapper mapper = new MessageMapper(config.sink(), config.name());
        List<String> unroutable = new ArrayList<>();
        List<String> invalid = new ArrayList<>();
        int published = 0;
        // The redrive's publisher: mandatory, confirms, each message settled on its own (a return or a nack names that one).
        try (Connection db = config.database().connect("outbox-relay replay");
                AmqpRepublisher publisher = dryRun ? null : new AmqpRepublisher(AmqpConnectionFactory.forSink(config.sink()),
                        "outbox-relay replay " + config.name(), config.sink().ackTimeout())) {
            List<Republisher.Message> page = new ArrayList<>();
            List<String> pageIds = new ArrayList<>();
            for (String qualified : config.outboxTables()) {
                String[] parts = qualified.contains(".") ? qualified.split("\\.", 2) : new String[] { "public", qualified };
                if (!PLAIN.matcher(parts[0]).matches() || !PLAIN.matcher(parts[1]).matches()) {
                    throw new IllegalArgumentException("debezium.source.table.include.list entry '" + qualified + "' is a pattern; replay needs table names");
                }
                try (PreparedStatement ps = db.prepareStatement(query(parts[0], parts[1], which))) {
                    bind(ps, which);
                    ps.setFetchSize(PAGE);
                    db.setAutoCommit(false);
                    try (ResultSet rs = ps.executeQuery()) {
                        OutboxRows rows = OutboxRows.of(rs.getMetaData(), config.engineProperties().getProperty("topic.prefix"), parts[0], parts[1]);
                        while (rs.next()) {
                            SourceRecord record = apply(chain, rows.record(rs));
                            String id = record == null ? null : OutboxHeaders.string(record, OutboxHeaders.MESSAGE_ID);
                            if (record == null || id == null || record.headers().lastWithName(OutboxHeaders.INVALID_REASON) != null) {
                                invalid.add(String.valueOf(rs.getObject(idColumn())));
                                continue;
                            }
                            OutgoingMessage m = mapper.map(record);
                            page.add(new Republisher.Message(exchange == null ? m : new OutgoingMessage(exchange, m.routingKey(), m.properties(), m.body()),
                                    0));
                            pageIds.add(id);
                            published++;
                            if (page.size() == PAGE) {
                                unroutable.addAll(publish(publisher, page, pageIds));
                                progress.printf("replay: %d published so far%n", published);
                                progress.flush();
                            }
                        }
                    }
                    finally {
                        db.rollback();
                        db.setAutoCommit(true);
                    }
                }
            }
            unroutable.addAll(publish(publisher, page, pageIds));
            return new Result(published - unroutable.size(), unroutable, invalid);
        }
        finally {
            for (Transformation<SourceRecord> t : chain) {
                t.close();
            }
        }
    }

    /** Publishes a page (nothing on a dry run) and empties it; returns the ids the broker did not take (returned or nacked). */
    private static List<String> publish(AmqpRepublisher publisher, List<Republisher.Message> page, List<String> ids)
            throws IOException, InterruptedException, TimeoutException {
        List<String> notTaken = new ArrayList<>();
        if (publisher != null && !page.isEmpty()) {
            publisher.publish(page).stream().forEach(i -> notTaken.add(ids.get(i)));
        }
        page.clear();
        ids.clear();
        return notTaken;
    }

    private String idColumn() {
        return column(config.engineProperties(), "transforms." + routerName() + ".table.field.event.id", "id");
    }

    private String query(String schema, String table, Selection which) {
        StringBuilder sql = new StringBuilder("SELECT * FROM " + schema + "." + table + " WHERE true");
        Properties e = config.engineProperties();
        String prefix = "transforms." + routerName() + ".";
        if (which.since() != null) {
            sql.append(" AND ").append(timeColumn).append(" >= ?");
        }
        if (which.until() != null) {
            sql.append(" AND ").append(timeColumn).append(" < ?");
        }
        if (which.aggregateType() != null) {
            sql.append(" AND ").append(column(e, prefix + "route.by.field", "aggregatetype")).append(" = ?");
        }
        if (which.aggregateId() != null) {
            sql.append(" AND ").append(column(e, prefix + "table.field.event.key", "aggregateid")).append(" = ?");
        }
        if (which.type() != null) {
            sql.append(" AND ").append(column(e, prefix + "table.field.event.type", "type")).append(" = ?");
        }
        // Commit order is not in the table; the time column, then the id, is the closest to it.
        return sql.append(" ORDER BY ").append(timeColumn).append(", ").append(column(e, prefix + "table.field.event.id", "id")).toString();
    }

    private static String column(Properties engine, String key, String fallback) {
        String name = engine.getProperty(key, fallback);
        if (!PLAIN.matcher(name).matches()) {
            throw new IllegalArgumentException("debezium." + key + "=" + name + " is not a plain column name");
        }
        return name;
    }

    private static void bind(PreparedStatement ps, Selection which) throws SQLException {
        int i = 1;
        if (which.since() != null) {
            ps.setObject(i++, OffsetDateTime.ofInstant(which.since(), ZoneOffset.UTC));
        }
        if (which.until() != null) {
            ps.setObject(i++, OffsetDateTime.ofInstant(which.until(), ZoneOffset.UTC));
        }
        for (String v : new String[] { which.aggregateType(), which.aggregateId(), which.type() }) {
            if (v != null) {
                ps.setString(i++, v);
            }
        }
    }

    /** The name of the transform that is the outbox router, by default {@code outbox}. */
    private String routerName() {
        String router = config.routerName();
        return router == null ? "outbox" : router;
    }

    /** The configured SMT chain, built and configured as the engine does (predicates are not applied). */
    @SuppressWarnings("unchecked")
    private List<Transformation<SourceRecord>> transforms() {
        List<Transformation<SourceRecord>> chain = new ArrayList<>();
        Properties e = config.engineProperties();
        for (String name : config.transformChain()) {
            String prefix = "transforms." + name + ".";
            Map<String, Object> props = new HashMap<>();
            e.stringPropertyNames().stream().filter(k -> k.startsWith(prefix)).forEach(k -> props.put(k.substring(prefix.length()), e.getProperty(k)));
            try {
                Transformation<SourceRecord> t = (Transformation<SourceRecord>) Class.forName(e.getProperty(prefix + "type")).getDeclaredConstructor().newInstance();
                t.configure(props);
                chain.add(t);
            }
            catch (ReflectiveOperationException ex) {
                throw new IllegalArgumentException("debezium." + prefix + "type=" + e.getProperty(prefix + "type") + " cannot be loaded: " + ex, ex);
            }
        }
        return chain;
    }

    private static SourceRecord apply(List<Transformation<SourceRecord>> chain, SourceRecord record) {
        ConnectRecord<SourceRecord> r = record;
        for (Transformation<SourceRecord> t : chain) {
            r = t.apply((SourceRecord) r);
            if (r == null) {
                return null;
            }
        }
        return (SourceRecord) r;
    }
}
