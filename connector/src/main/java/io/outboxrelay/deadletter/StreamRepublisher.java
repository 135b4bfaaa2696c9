package io.outboxrelay.deadletter;

import java.io.IOException;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import com.rabbitmq.stream.Environment;
import com.rabbitmq.stream.Producer;
import com.rabbitmq.stream.StreamException;

import io.outboxrelay.config.StreamSinkConfig;
import io.outboxrelay.sink.OutgoingMessage;
import io.outboxrelay.sink.StreamEnvironments;
import io.outboxrelay.sink.StreamMessages;

/**
 * Publishes again to the stream (or super stream, routed by the aggregate id as the sink does)
 * first meant, making it as the sink would if it is still missing. The producer has no name: the
 * sink's named producer numbers events by their place in the source, and a parked event has no
 * place left to take there. A parked message was never stored in the stream, so it comes once,
 * unless a redrive is cut off between the broker's confirm and the mark (then twice, with its id).
 */
public final class StreamRepublisher implements Republisher {

    private final StreamSinkConfig config;
    private final Environment environment;
    private final Map<String, Producer> producers = new HashMap<>();

    public StreamRepublisher(StreamSinkConfig config, String connectionName) throws IOException {
        this.config = config;
        try {
            this.environment = StreamEnvironments.open(config, connectionName);
        }
        catch (RuntimeException e) {
            throw new IOException(StreamEnvironments.explain(config, e), e);
        }
    }

    @Override
    public Set<String> publish(List<OutgoingMessage> batch) throws IOException, TimeoutException, InterruptedException {
        Set<String> refused = ConcurrentHashMap.newKeySet();
        CountDownLatch settled = new CountDownLatch(batch.size());
        for (OutgoingMessage m : batch) {
            Producer producer = producer(m.exchange());
            producer.send(StreamMessages.of(producer.messageBuilder(), m), status -> {
                if (!status.isConfirmed()) {
                    refused.add(m.messageId());
                }
                settled.countDown();
            });
        }
        if (!settled.await(config.delivery().ackTimeout().toMillis(), TimeUnit.MILLISECONDS)) {
            throw new TimeoutException("the broker did not confirm every message within " + config.delivery().ackTimeout().toSeconds() + " s ("
                    + StreamSinkConfig.PREFIX + "producer.confirmTimeout)");
        }
        return refused;
    }

    private Producer producer(String stream) throws IOException {
        Producer producer = producers.get(stream);
        if (producer != null) {
            return producer;
        }
        try {
            StreamEnvironments.ensure(environment, config, stream);
            producer = StreamEnvironments.destination(environment.producerBuilder(), config, stream).confirmTimeout(config.delivery().ackTimeout()).build();
        }
        catch (StreamException e) {
            throw new IOException((config.superStream() ? "super stream '" : "stream '") + stream + "' cannot be made or written to (" + e.getMessage()
                    + "): create it, or grant the user " + config.username() + " the configure and write permissions on it", e);
        }
        producers.put(stream, producer);
        return producer;
    }

    @Override
    public void close() {
        producers.values().forEach(Producer::close);
        environment.close();
    }
}
