package io.outboxrelay.sink.stream;

import java.io.IOException;
import java.util.BitSet;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import com.rabbitmq.stream.Environment;
import com.rabbitmq.stream.Producer;
import com.rabbitmq.stream.StreamException;

import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.deadletter.Republisher;
import io.outboxrelay.config.StreamSinkConfig;

/**
 * Publishes again to the stream (or super stream, routed by the aggregate id as the sink does)
 * first meant, making it as the sink would if it is still missing, through a producer of its own
 * name ({@link #producerName}): each parked event carries the publishing id the re-drive gave it
 * before publishing it (stored in its row), so a re-drive cut off anywhere and run again stores
 * each event once. The sink's producer cannot be used: it numbers events by their place in the
 * source, where a parked event has no place left to take.
 */
public final class StreamRepublisher implements Republisher {

    private final StreamSinkConfig config;
    private final String producerName;
    private final Environment environment;
    private final Map<String, Producer> producers = new HashMap<>();
    /** The broker's last publishing id of the re-drive producer on each destination, read before its producer was made. */
    private final Map<String, Long> probed = new HashMap<>();

    public StreamRepublisher(StreamSinkConfig config, String connectionName) throws IOException {
        this.config = config;
        this.producerName = producerName(config);
        try {
            this.environment = StreamEnvironments.open(config, connectionName);
        }
        catch (RuntimeException e) {
            throw new IOException(StreamEnvironments.explain(config, e), e);
        }
    }

    /** The re-drive's producer name: the sink's with {@code -redrive}, so that neither drops the other's ids. */
    public static String producerName(StreamSinkConfig config) {
        return config.producerName() + "-redrive";
    }

    @Override
    public BitSet publish(List<Message> batch) throws IOException, TimeoutException, InterruptedException {
        BitSet refused = new BitSet();
        CountDownLatch settled = new CountDownLatch(batch.size());
        for (int i = 0; i < batch.size(); i++) {
            int position = i;
            Message m = batch.get(i);
            Producer producer = producer(m.message().destination());
            producer.send(StreamMessages.of(producer.messageBuilder().publishingId(m.publishingId()), m.message()), status -> {
                if (!status.isConfirmed()) {
                    synchronized (refused) {
                        refused.set(position);
                    }
                }
                settled.countDown();
            });
        }
        if (!settled.await(config.delivery().ackTimeout().toMillis(), TimeUnit.MILLISECONDS)) {
            throw new TimeoutException("the broker did not confirm every message within " + config.delivery().ackTimeout().toSeconds() + " s ("
                    + StreamSinkConfig.PREFIX + "producer.confirmTimeout)");
        }
        synchronized (refused) {
            return (BitSet) refused.clone();
        }
    }

    @Override
    public boolean deduplicates() {
        return true;
    }

    @Override
    public long lastPublishingId(Collection<String> destinations) throws IOException {
        long last = 0;
        for (String destination : destinations) {
            last = Math.max(last, floor(destination));
        }
        return last;
    }

    /**
     * The broker's last publishing id of the re-drive producer on {@code destination} (on each of a
     * super stream's partitions), read once, before this re-drive's producer for it is made: a
     * second producer of one name on one stream is one too many for the broker. What this re-drive
     * publishes afterwards is in the table, which the caller asks too.
     */
    private long floor(String destination) throws IOException {
        Long known = probed.get(destination);
        if (known != null) {
            return known;
        }
        ensure(destination);
        long last;
        try {
            last = StreamEnvironments.lastPublishingId(environment, config, producerName, destination);
        }
        catch (StreamException | IllegalStateException e) {
            throw new IOException("cannot read the last publishing id of producer '" + producerName + "' on '" + destination + "' ("
                    + e.getMessage() + "); nothing was re-driven from this page", e);
        }
        probed.put(destination, last);
        return last;
    }

    private Producer producer(String stream) throws IOException {
        Producer producer = producers.get(stream);
        if (producer != null) {
            return producer;
        }
        floor(stream);
        try {
            producer = StreamEnvironments.destination(environment.producerBuilder().name(producerName), config, stream)
                    .confirmTimeout(config.delivery().ackTimeout()).build();
        }
        catch (StreamException e) {
            throw cannotWrite(stream, e);
        }
        producers.put(stream, producer);
        return producer;
    }

    private void ensure(String stream) throws IOException {
        try {
            StreamEnvironments.ensure(environment, config, stream);
        }
        catch (StreamException e) {
            throw cannotWrite(stream, e);
        }
    }

    private IOException cannotWrite(String stream, StreamException e) {
        return new IOException((config.superStream() ? "super stream '" : "stream '") + stream + "' cannot be made or written to (" + e.getMessage()
                + "): create it, or grant the user " + config.username() + " the configure and write permissions on it", e);
    }

    @Override
    public void close() {
        producers.values().forEach(Producer::close);
        environment.close();
    }
}
