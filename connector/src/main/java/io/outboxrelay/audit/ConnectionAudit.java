package io.outboxrelay.audit;

import java.io.IOException;
import java.util.concurrent.TimeoutException;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.DefaultSaslConfig;

/**
 * The access trail: one line for every connection the relay opens to PostgreSQL or RabbitMQ, or
 * fails to open, with the server, the user, the TLS facts and the outcome — and never a secret:
 * callers pass only names, addresses and the driver's or broker's own reason, which carries no
 * password. Its own logger ({@code io.outboxrelay.audit}) so that it can be routed or silenced on
 * its own.
 */
public final class ConnectionAudit {

    private static final Logger LOG = LoggerFactory.getLogger("io.outboxrelay.audit");

    private ConnectionAudit() {
    }

    /** Opens a RabbitMQ connection and leaves its line, opened or refused. */
    public static Connection openBroker(ConnectionFactory factory, String name) throws IOException, TimeoutException {
        String where = factory.getHost() + ":" + factory.getPort() + factory.getVirtualHost();
        String user = factory.getSaslConfig() == DefaultSaslConfig.EXTERNAL ? "the client certificate's user (EXTERNAL)" : factory.getUsername();
        String tls = factory.isSSL() ? "TLS" : "not TLS";
        try {
            Connection connection = factory.newConnection(name);
            opened("RabbitMQ", name, where, user, tls);
            return connection;
        }
        catch (IOException | TimeoutException | RuntimeException e) {
            refused("RabbitMQ", name, where, user, tls, rootMessage(e));
            throw e;
        }
    }

    private static String rootMessage(Exception e) {
        Throwable root = e;
        while (root.getCause() != null && root.getCause() != root) {
            root = root.getCause();
        }
        String message = root.getMessage() != null ? root.getMessage() : e.getMessage();
        return message != null ? message : e.getClass().getSimpleName();
    }

    /** A connection was opened. */
    public static void opened(String server, String purpose, String where, String user, String tls) {
        LOG.atInfo().addKeyValue("server", server).addKeyValue("purpose", purpose).addKeyValue("user", user)
                .log("{} connection opened for {}: {} as {}, {}", server, purpose, where, user, tls);
    }

    /** A connection could not be opened. */
    public static void refused(String server, String purpose, String where, String user, String tls, String reason) {
        LOG.atWarn().addKeyValue("server", server).addKeyValue("purpose", purpose).addKeyValue("user", user)
                .log("{} connection refused for {}: {} as {}, {}: {}", server, purpose, where, user, tls, reason);
    }
}
