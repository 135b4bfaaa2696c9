package io.outboxrelay.testing;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import com.rabbitmq.stream.Address;
import com.rabbitmq.stream.Consumer;
import com.rabbitmq.stream.Environment;
import com.rabbitmq.stream.Message;
import com.rabbitmq.stream.OffsetSpecification;

/**
 * RabbitMQ Streams for the tests: a stream-client environment on the test broker's stream
 * listener, unique stream names, and reading a whole stream (or super stream) back from its first
 * message with a consumer of its own, independent of the relay. Streams made here are deleted
 * after the test class.
 */
public final class TestStreams implements AfterAllCallback {

    private final List<String> streams = Collections.synchronizedList(new ArrayList<>());
    private Environment environment;

    public TestServers.StreamEndpoint server() {
        return TestServers.streams();
    }

    public synchronized Environment environment() {
        if (environment == null) {
            TestServers.StreamEndpoint s = server();
            TestServers.RabbitEndpoint r = TestServers.rabbitMq();
            Address entry = new Address(s.host(), s.port());
            environment = Environment.builder().host(s.host()).port(s.port()).addressResolver(a -> entry)
                    .username(r.user()).password(r.password()).build();
        }
        return environment;
    }

    /** A name no earlier run used, remembered for deletion (with a super stream's partitions). */
    public String uniqueName(String name, int partitions) {
        String unique = name + "-" + Long.toString(System.nanoTime(), 36);
        streams.add(unique);
        for (int i = 0; i < partitions; i++) {
            streams.add(unique + "-" + i);
        }
        return unique;
    }

    /**
     * Every message of {@code stream}, from the first, once at least {@code atLeast} have come and
     * then nothing more for {@code quiet}; fails once nothing has come for {@code stall} short of that.
     */
    public List<StreamedMessage> readAll(String stream, int atLeast, Duration quiet, Duration stall) throws InterruptedException {
        return readAll(environment(), stream, atLeast, quiet, stall);
    }

    /** The same through {@code environment} (a broker of a test's own, such as a TLS-only one). */
    public static List<StreamedMessage> readAll(Environment environment, String stream, int atLeast, Duration quiet, Duration stall)
            throws InterruptedException {
        try (Following following = follow(environment, stream)) {
            return following.awaitQuiet(atLeast, quiet, stall);
        }
    }

    /** Reads {@code stream} from its first message on, while the caller goes on: a soak counts arrivals with it. */
    public Following follow(String stream) {
        return follow(environment(), stream);
    }

    private static Following follow(Environment environment, String stream) {
        Following following = new Following(stream);
        following.consumer = environment.consumerBuilder().stream(stream).offset(OffsetSpecification.first())
                .messageHandler((context, message) -> {
                    following.messages.add(of(stream, context.offset(), message));
                    following.lastAt.set(System.nanoTime());
                }).build();
        return following;
    }

    /** A consumer of a stream from its first message, collecting every message it is given. */
    public static final class Following implements AutoCloseable {
        private final List<StreamedMessage> messages = Collections.synchronizedList(new ArrayList<>());
        private final AtomicLong lastAt = new AtomicLong(System.nanoTime());
        private final String stream;
        private Consumer consumer;

        private Following(String stream) {
            this.stream = stream;
        }

        /** Messages received so far. */
        public int count() {
            return messages.size();
        }

        /**
         * Every message received, in stream order, once at least {@code atLeast} have come and then
         * nothing more for {@code quiet}; fails once nothing has come for {@code stall} short of
         * {@code atLeast} (progress, not a wall-clock bound: see {@link Progress}).
         */
        public List<StreamedMessage> awaitQuiet(int atLeast, Duration quiet, Duration stall) throws InterruptedException {
            long start = System.nanoTime();
            while (messages.size() < atLeast || System.nanoTime() - lastAt.get() < quiet.toNanos()) {
                if (messages.size() < atLeast && System.nanoTime() - Math.max(start, lastAt.get()) > stall.toNanos()) {
                    throw new AssertionError("stream " + stream + ": " + messages.size() + " message(s), expected at least " + atLeast
                            + ", and nothing more for " + stall.toSeconds() + " s");
                }
                Thread.sleep(50);
            }
            synchronized (messages) {
                List<StreamedMessage> copy = new ArrayList<>(messages);
                copy.sort((a, b) -> Long.compare(a.offset(), b.offset()));
                return copy;
            }
        }

        @Override
        public void close() {
            consumer.close();
        }
    }

    /** Whether the broker has super streams (RabbitMQ 3.11+): made and deleted once to find out. */
    public boolean superStreamsSupported() {
        String probe = "probe-" + Long.toString(System.nanoTime(), 36);
        try {
            environment().streamCreator().name(probe).superStream().partitions(1).creator().create();
            environment().deleteSuperStream(probe);
            return true;
        }
        catch (RuntimeException e) {
            return false;
        }
    }

    /**
     * Every message of each partition, partition after partition, each in its own order, once they
     * hold at least {@code atLeast} together; fails once their total has not grown for {@code stall}.
     */
    public Map<String, List<StreamedMessage>> readPartitions(List<String> partitions, int atLeast, Duration quiet, Duration stall)
            throws InterruptedException {
        Map<String, List<StreamedMessage>> byPartition = new ConcurrentHashMap<>();
        // Each read takes every partition to its quiet end; the total is what progresses between reads.
        Progress.atLeast("super stream partitions " + partitions + " together", atLeast, stall, () -> {
            byPartition.clear();
            int total = 0;
            for (String partition : partitions) {
                List<StreamedMessage> messages = readAll(partition, 0, quiet, stall);
                byPartition.put(partition, messages);
                total += messages.size();
            }
            return total;
        });
        return byPartition;
    }

    private static StreamedMessage of(String stream, long offset, Message m) {
        Object id = m.getProperties() == null ? null : m.getProperties().getMessageId();
        return new StreamedMessage(stream, offset, id == null ? null : String.valueOf(id),
                m.getProperties() == null ? null : m.getProperties().getGroupId(),
                m.getProperties() == null ? null : m.getProperties().getSubject(),
                m.getProperties() == null ? null : m.getProperties().getContentType(),
                m.getApplicationProperties() == null ? Map.of() : Map.copyOf(m.getApplicationProperties()), m.getBodyAsBinary());
    }

    @Override
    public void afterAll(ExtensionContext context) {
        if (environment == null) {
            return;
        }
        for (String stream : streams) {
            try {
                environment.deleteSuperStream(stream);
            }
            catch (RuntimeException e) {
                // Not a super stream, or a broker without them.
            }
            try {
                environment.deleteStream(stream);
            }
            catch (RuntimeException e) {
                // Not made in the end (a test that failed early), or a super stream's partition deleted with it.
            }
        }
        environment.close();
    }
}
