package io.outboxrelay.sink.amqp;

import com.rabbitmq.client.ConnectionFactory;
import com.rabbitmq.client.ConnectionFactoryConfigurator;

import com.rabbitmq.client.DefaultSaslConfig;

import io.outboxrelay.config.BrokerTls;
import io.outboxrelay.config.SinkConfig;
import io.outboxrelay.credentials.FileCredentialsProvider;

/**
 * The connection factory the sink settings describe: Debezium Server's {@code connection.*} keys,
 * read by amqp-client's own loader. Automatic recovery is off on purpose: it restarts delivery tags
 * on the recovered channel and cannot resend what was unconfirmed, while the sink must republish
 * exactly that tail; so the sink decides when to reconnect. TLS is verified by default
 * ({@link BrokerTls}). A password from the secrets directory is read at every connection.
 */
public final class AmqpConnectionFactory {

    private AmqpConnectionFactory() {
    }

    public static ConnectionFactory forSink(SinkConfig sink) {
        ConnectionFactory factory = new ConnectionFactory();
        ConnectionFactoryConfigurator.load(factory, BrokerTls.verifiedByDefault(sink.connection()), "");
        if (sink.password().file() != null) {
            // Read again at each connection, so the sink's next reconnection logs in with a rotated password.
            factory.setCredentialsProvider(new FileCredentialsProvider(factory.getUsername(), sink.password().file()));
        }
        if (sink.saslExternal()) {
            factory.setSaslConfig(DefaultSaslConfig.EXTERNAL);
        }
        factory.setAutomaticRecoveryEnabled(false);
        factory.setTopologyRecoveryEnabled(false);
        return factory;
    }
}
