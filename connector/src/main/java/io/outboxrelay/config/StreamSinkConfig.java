package io.outboxrelay.config;

import java.time.Duration;
import java.util.List;

import io.outboxrelay.credentials.Password;

/**
 * The RabbitMQ Streams sink's settings ({@code debezium.sink.type=rabbitmqstream}): Debezium
 * Server 3.6's keys with their meanings, plus the window and back-off this project adds.
 *
 * @param stream        the stream or super stream; null: the record's topic
 * @param producerName  the named producer the broker de-duplicates for; never null (defaults to {@code relay.name})
 * @param bindingKeys   the binding keys of a super stream to create; empty: {@code partitions}
 */
public record StreamSinkConfig(
        String host,
        int port,
        String username,
        Password password,
        String virtualHost,
        Tls tls,
        Duration rpcTimeout,
        int maxProducersByConnection,
        int maxTrackingConsumersByConnection,
        int maxConsumersByConnection,
        Duration requestedHeartbeat,
        int requestedMaxFrameSize,
        String id,
        String stream,
        Duration maxAge,
        String maxLength,
        String maxSegmentSize,
        boolean superStream,
        int partitions,
        List<String> bindingKeys,
        String producerName,
        String filterValue,
        int batchSize,
        Duration batchPublishingDelay,
        Duration enqueueTimeout,
        String nullValue,
        Delivery delivery) {

    public static final String PREFIX = Settings.STREAM_PREFIX;

    /** TLS to the stream listener; verification is on unless turned off by name. */
    public record Tls(boolean enabled, String serverName, String trustStore, Password trustStorePassword, boolean hostnameVerification) {
    }

    /** The super stream's partition streams, as the broker names them: {@code <super stream>-<binding key>}. */
    public List<String> partitionStreams(String superStreamName) {
        List<String> keys = bindingKeys.isEmpty()
                ? java.util.stream.IntStream.range(0, partitions).mapToObj(String::valueOf).toList()
                : bindingKeys;
        return keys.stream().map(k -> superStreamName + "-" + k).toList();
    }
}
