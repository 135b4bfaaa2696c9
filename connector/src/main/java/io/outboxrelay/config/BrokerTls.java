package io.outboxrelay.config;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import com.rabbitmq.client.ConnectionFactoryConfigurator;

/**
 * TLS to RabbitMQ verified by default. amqp-client's configurator, given {@code ssl.enabled=true}
 * alone, trusts every server certificate and checks no host name;
 * here, whenever TLS is on, the server certificate (against {@code ssl.trust.store}, else the JVM's
 * trust store) and the host name are verified unless the configuration turns either off by name,
 * which is then a warning.
 */
public final class BrokerTls {

    private static final String PREFIX = SinkConfig.PREFIX + "connection.";

    private BrokerTls() {
    }

    /** Whether the {@code connection.*} settings ask for TLS. */
    public static boolean enabled(Map<String, String> connection) {
        return Boolean.parseBoolean(connection.get(ConnectionFactoryConfigurator.SSL_ENABLED));
    }

    /** The {@code connection.*} settings with verification switched on wherever TLS is and the user did not say otherwise. */
    public static Map<String, String> verifiedByDefault(Map<String, String> connection) {
        Map<String, String> c = new TreeMap<>(connection);
        if (enabled(c)) {
            c.putIfAbsent(ConnectionFactoryConfigurator.SSL_VALIDATE_SERVER_CERTIFICATE, "true");
            c.putIfAbsent(ConnectionFactoryConfigurator.SSL_VERIFY_HOSTNAME, "true");
        }
        return c;
    }

    /** What the settings leave unverified, one warning each. */
    static List<String> warnings(Map<String, String> connection) {
        List<String> warnings = new ArrayList<>();
        if (!enabled(connection)) {
            return warnings;
        }
        if ("false".equalsIgnoreCase(connection.get(ConnectionFactoryConfigurator.SSL_VALIDATE_SERVER_CERTIFICATE))
                && connection.get(ConnectionFactoryConfigurator.SSL_TRUST_STORE) == null && connection.get(ConnectionFactoryConfigurator.SSL_KEY_STORE) == null) {
            warnings.add(PREFIX + ConnectionFactoryConfigurator.SSL_VALIDATE_SERVER_CERTIFICATE + "=false: the relay accepts any certificate the "
                    + "RabbitMQ server shows, so anyone on the path can pose as the broker");
        }
        if ("false".equalsIgnoreCase(connection.get(ConnectionFactoryConfigurator.SSL_VERIFY_HOSTNAME))) {
            warnings.add(PREFIX + ConnectionFactoryConfigurator.SSL_VERIFY_HOSTNAME + "=false: the server certificate is not checked against the "
                    + "host name, so any certificate the trust store accepts will do");
        }
        return warnings;
    }
}
