package io.outboxrelay.sink.amqp;

import java.io.IOException;
import java.time.Duration;
import java.util.BitSet;
import java.util.Collection;
import java.util.List;
import java.util.NavigableMap;
import java.util.TreeMap;
import java.util.concurrent.TimeoutException;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.ConfirmListener;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;

import io.outboxrelay.message.OutgoingMessage;
import io.outboxrelay.deadletter.Republisher;
import io.outboxrelay.audit.ConnectionAudit;

/**
 * Publishes again to the exchange and routing key first used, with {@code mandatory} and publisher
 * confirms, each message settled on its own: a nack or a return keeps that one parked, and every
 * other one of the batch is marked. An exchange does not de-duplicate: a re-drive cut off between
 * the broker's confirms and the marks publishes those messages again, with their ids.
 */
public final class AmqpRepublisher implements Republisher {

    private final Connection connection;
    private final Channel channel;
    private final Duration confirmTimeout;
    /** Of the batch being published: its position by delivery tag, until settled; guarded by itself. */
    private final NavigableMap<Long, Integer> unsettled = new TreeMap<>();
    private final BitSet notTaken = new BitSet();
    private List<Message> batch = List.of();

    public AmqpRepublisher(ConnectionFactory broker, String connectionName, Duration confirmTimeout) throws IOException, TimeoutException {
        this.connection = ConnectionAudit.openBroker(broker, connectionName);
        this.channel = connection.createChannel();
        this.confirmTimeout = confirmTimeout;
        channel.confirmSelect();
        // A return comes before the ack of its message and carries no delivery tag: it is matched to the first unsettled
        // message of the batch with its id.
        channel.addReturnListener(r -> {
            synchronized (unsettled) {
                for (int position : unsettled.values()) {
                    if (!notTaken.get(position) && r.getProperties().getMessageId() != null
                            && r.getProperties().getMessageId().equals(batch.get(position).message().messageId())) {
                        notTaken.set(position);
                        return;
                    }
                }
            }
        });
        channel.addShutdownListener(cause -> {
            synchronized (unsettled) {
                unsettled.notifyAll();
            }
        });
        channel.addConfirmListener(new ConfirmListener() {
            @Override
            public void handleAck(long tag, boolean multiple) {
                settle(tag, multiple, false);
            }

            @Override
            public void handleNack(long tag, boolean multiple) {
                settle(tag, multiple, true);
            }
        });
    }

    private void settle(long tag, boolean multiple, boolean nacked) {
        synchronized (unsettled) {
            NavigableMap<Long, Integer> done = multiple ? unsettled.headMap(tag, true) : unsettled.subMap(tag, true, tag, true);
            if (nacked) {
                done.values().forEach(notTaken::set);
            }
            done.clear();
            unsettled.notifyAll();
        }
    }

    @Override
    public BitSet publish(List<Message> messages) throws IOException, TimeoutException, InterruptedException {
        synchronized (unsettled) {
            batch = messages;
            notTaken.clear();
            unsettled.clear();
        }
        for (int i = 0; i < messages.size(); i++) {
            synchronized (unsettled) {
                unsettled.put(channel.getNextPublishSeqNo(), i);
            }
            var m = messages.get(i).message();
            channel.basicPublish(m.destination(), m.routingKey(), true, m.properties(), m.body());
        }
        long deadline = System.nanoTime() + confirmTimeout.toNanos();
        synchronized (unsettled) {
            while (!unsettled.isEmpty()) {
                long left = deadline - System.nanoTime();
                if (left <= 0 || !channel.isOpen()) {
                    throw new TimeoutException(unsettled.size() + " message(s) not confirmed within " + confirmTimeout.toMillis() + " ms"
                            + (channel.isOpen() ? "" : " (the channel closed: " + channel.getCloseReason() + ")"));
                }
                unsettled.wait(Math.max(1, left / 1_000_000));
            }
            return (BitSet) notTaken.clone();
        }
    }

    @Override
    public boolean deduplicates() {
        return false;
    }

    @Override
    public long lastPublishingId(Collection<String> destinations) {
        return 0;
    }

    @Override
    public void close() throws IOException {
        connection.close();
    }
}
