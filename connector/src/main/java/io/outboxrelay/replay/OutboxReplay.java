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
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeoutException;
import java.util.regex.Pattern;

import org.apache.kafka.connect.connector.ConnectRecord;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.transforms.Transformation;

import com.rabbitmq.client.Channel;

import io.outboxrelay.audit.ConnectionAudit;
import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.sink.amqp.AmqpConnectionFactory;
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

    /** What was published: confirmed and routed, returned unroutable, and rows the router would not turn into a message. */
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
        try (Connection db = config.database().connect("outbox-relay replay");
                com.rabbitmq.client.Connection amqp = dryRun ? null : ConnectionAudit.openBroker(AmqpConnectionFactory.forSink(config.sink()),
                        "outbox-relay replay " + config.name())) {
            Channel channel = amqp == null ? null : amqp.createChannel();
            Set<String> returned = ConcurrentHashMap.newKeySet();
            if (channel != null) {
                channel.confirmSelect();
                channel.addReturnListener(r -> returned.add(r.getProperties().getMessageId()));
            }
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
                        int inPage = 0;
                        while (rs.next()) {
                            SourceRecord record = apply(chain, rows.record(rs));
                            String id = record == null ? null : OutboxHeaders.string(record, OutboxHeaders.MESSAGE_ID);
                            if (record == null || id == null || record.headers().lastWithName(OutboxHeaders.INVALID_REASON) != null) {
                                invalid.add(String.valueOf(rs.getObject(idColumn())));
                                continue;
                            }
                            OutgoingMessage m = mapper.map(record);
                            if (channel != null) {
                                channel.basicPublish(exchange != null ? exchange : m.destination(), m.routingKey(), true, m.properties(), m.body());
                            }
                            published++;
                            if (++inPage == PAGE) {
                                confirm(channel);
                                progress.printf("replay: %d published so far%n", published);
                                progress.flush();
                                inPage = 0;
                            }
                        }
                    }
                    finally {
                        db.rollback();
                        db.setAutoCommit(true);
                    }
                }
            }
            confirm(channel);
            unroutable.addAll(returned);
            return new Result(published - unroutable.size(), unroutable, invalid);
        }
        finally {
            for (Transformation<SourceRecord> t : chain) {
                t.close();
            }
        }
    }

    private void confirm(Channel channel) throws IOException, InterruptedException, TimeoutException {
        if (channel != null) {
            channel.waitForConfirmsOrDie(config.sink().ackTimeout().toMillis());
        }
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
