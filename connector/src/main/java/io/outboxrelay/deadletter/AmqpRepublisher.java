package io.outboxrelay.deadletter;

import java.io.IOException;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeoutException;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;

import io.outboxrelay.audit.ConnectionAudit;
import io.outboxrelay.sink.OutgoingMessage;

/** Publishes again to the exchange and routing key first used, with {@code mandatory} and publisher confirms. */
public final class AmqpRepublisher implements Republisher {

    private final Connection connection;
    private final Channel channel;
    private final Duration confirmTimeout;
    private final Set<String> returned = ConcurrentHashMap.newKeySet();

    public AmqpRepublisher(ConnectionFactory broker, String connectionName, Duration confirmTimeout) throws IOException, TimeoutException {
        this.connection = ConnectionAudit.openBroker(broker, connectionName);
        this.channel = connection.createChannel();
        this.confirmTimeout = confirmTimeout;
        channel.confirmSelect();
        channel.addReturnListener(r -> returned.add(r.getProperties().getMessageId()));
    }

    @Override
    public Set<String> publish(List<OutgoingMessage> batch) throws IOException, TimeoutException, InterruptedException {
        returned.clear();
        for (OutgoingMessage m : batch) {
            channel.basicPublish(m.exchange(), m.routingKey(), true, m.properties(), m.body());
        }
        // Returns arrive before the confirms of the messages they concern, so this wait also settles them.
        channel.waitForConfirmsOrDie(confirmTimeout.toMillis());
        return new HashSet<>(returned);
    }

    @Override
    public void close() throws IOException {
        connection.close();
    }
}
