package io.outboxrelay.config;

import java.util.List;
import java.util.Locale;

import org.apache.kafka.common.config.ConfigDef;

/** The settings tables of {@code docs/configuration.md} and of {@code outbox-relay settings}, printed from the declarations in {@link Settings}. */
public final class SettingsDoc {

    private SettingsDoc() {
    }

    /** The {@code relay.*} table. */
    public static String relay() {
        return table(Settings.RELAY, "", null);
    }

    /** The {@code debezium.sink.rabbitmq.*} table, keys without the prefix as Debezium Server's documentation writes them. */
    public static String sink() {
        return table(Settings.SINK, Settings.SINK_PREFIX, "| `connection.*` | per key | host `localhost`, port `5672`, `guest`/`guest` | passed to amqp-client's "
                + "`ConnectionFactoryConfigurator` without the prefix (`host`, `port`, `username`, `password`, `virtual.host`, `ssl.*`, "
                + "`connection.heartbeat`, ...). Automatic recovery is always off: the sink reconnects itself so it can republish the unconfirmed tail |\n");
    }

    /** The {@code debezium.sink.rabbitmqstream.*} table, keys without the prefix. */
    public static String stream() {
        return table(Settings.STREAM, Settings.STREAM_PREFIX, null);
    }

    private static String table(ConfigDef def, String stripPrefix, String firstRow) {
        StringBuilder out = new StringBuilder("| key | type | default | meaning |\n|---|---|---|---|\n");
        if (firstRow != null) {
            out.append(firstRow);
        }
        for (ConfigDef.ConfigKey key : def.configKeys().values()) {
            out.append("| `").append(key.name.substring(stripPrefix.length())).append("` | ").append(key.type.name().toLowerCase(Locale.ROOT))
                    .append(" | ").append(value(key.defaultValue)).append(" | ").append(key.documentation).append(" |\n");
        }
        return out.toString();
    }

    private static String value(Object v) {
        if (v == null) {
            return "—";
        }
        if (v instanceof List<?> list) {
            return list.isEmpty() ? "(empty)" : "`" + String.join(",", list.stream().map(String::valueOf).toList()) + "`";
        }
        String s = String.valueOf(v);
        return s.isEmpty() ? "`\"\"`" : "`" + s + "`";
    }
}
