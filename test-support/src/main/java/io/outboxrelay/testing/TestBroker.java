package io.outboxrelay.testing;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeoutException;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;

/**
 * The real RabbitMQ broker that {@link TestServers} found, with exchange and queue names unique to
 * the test class, deleted after it. Register as a static field with {@code @RegisterExtension}.
 */
public final class TestBroker implements AfterAllCallback {

    private final String prefix = "t" + Integer.toHexString(ThreadLocalRandom.current().nextInt(0x10000, 0xfffff));
    private final List<String> exchanges = new ArrayList<>();
    private final List<String> queues = new ArrayList<>();

    public TestServers.RabbitEndpoint server() {
        return TestServers.rabbitMq();
    }

    public ConnectionFactory connectionFactory() {
        TestServers.RabbitEndpoint rabbit = server();
        ConnectionFactory factory = new ConnectionFactory();
        factory.setHost(rabbit.host());
        factory.setPort(rabbit.port());
        factory.setUsername(rabbit.user());
        factory.setPassword(rabbit.password());
        return factory;
    }

    public Connection newConnection() throws IOException, TimeoutException {
        return connectionFactory().newConnection("outbox-relay-test");
    }

    /** A name no other test class uses, e.g. for an exchange or a queue. */
    public String uniqueName(String name) {
        return prefix + "." + name;
    }

    /** Declares a durable exchange (deleted after the class) and returns its name. */
    public String declareExchange(String name, String type) throws IOException, TimeoutException {
        String exchange = uniqueName(name);
        try (Connection c = newConnection(); Channel ch = c.createChannel()) {
            ch.exchangeDeclare(exchange, type, true);
        }
        exchanges.add(exchange);
        return exchange;
    }

    /** Declares a durable queue bound to {@code exchange} with {@code bindingKey}, and returns its name. */
    public String declareQueue(String name, String exchange, String bindingKey) throws IOException, TimeoutException {
        String queue = uniqueName(name);
        try (Connection c = newConnection(); Channel ch = c.createChannel()) {
            ch.queueDeclare(queue, true, false, false, null);
            ch.queueBind(queue, exchange, bindingKey);
        }
        queues.add(queue);
        return queue;
    }

    /** Starts an independent consumer on {@code queue} that records every delivery. */
    public QueueRecorder record(String queue) throws IOException, TimeoutException {
        return QueueRecorder.start(newConnection(), queue);
    }

    @Override
    public void afterAll(ExtensionContext context) throws Exception {
        try (Connection c = newConnection(); Channel ch = c.createChannel()) {
            for (String queue : queues) {
                ch.queueDelete(queue);
            }
            for (String exchange : exchanges) {
                ch.exchangeDelete(exchange);
            }
        }
    }
}
