package io.outboxrelay.sink.stream;

import java.io.InputStream;
import java.net.ConnectException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.CertificateException;
import java.util.List;

import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.TrustManagerFactory;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import com.rabbitmq.stream.Address;
import com.rabbitmq.stream.AuthenticationFailureException;
import com.rabbitmq.stream.ByteCapacity;
import com.rabbitmq.stream.Environment;
import com.rabbitmq.stream.EnvironmentBuilder;
import com.rabbitmq.stream.Producer;
import com.rabbitmq.stream.ProducerBuilder;
import com.rabbitmq.stream.StreamCreator;

import io.netty.handler.ssl.DelegatingSslContext;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import io.outboxrelay.config.StreamSinkConfig;

/**
 * Opens stream-client environments from the stream sink's settings, for the sink, {@code check},
 * {@code tail} and a standby's broker check alike. Every connection goes to the configured host
 * and port (an address resolver, as Debezium Server's sink does), so a broker that advertises a
 * host name the relay cannot resolve, or one behind a load balancer, still works. The password is
 * read when the environment is opened, so a rotated secret file is picked up at the next one.
 */
public final class StreamEnvironments {

    private static final Logger LOG = LoggerFactory.getLogger(StreamEnvironments.class);

    private StreamEnvironments() {
    }

    public static Environment open(StreamSinkConfig config, String connectionName) {
        Address entry = new Address(config.host(), config.port());
        EnvironmentBuilder b = Environment.builder()
                .host(config.host())
                .port(config.port())
                .addressResolver(address -> entry)
                .username(config.username())
                .password(config.password().value())
                .virtualHost(config.virtualHost())
                .rpcTimeout(config.rpcTimeout())
                .requestedHeartbeat(config.requestedHeartbeat())
                .requestedMaxFrameSize(config.requestedMaxFrameSize())
                .maxProducersByConnection(config.maxProducersByConnection())
                .maxTrackingConsumersByConnection(config.maxTrackingConsumersByConnection())
                .maxConsumersByConnection(config.maxConsumersByConnection())
                .id(config.id() + " " + connectionName);
        if (config.tls().enabled()) {
            try {
                // Netty 4.1 checks no host name unless asked: HTTPS's rules are the ones certificates are made for.
                SslContext context = SslContextBuilder.forClient().trustManager(trustManagers(config.tls()))
                        .endpointIdentificationAlgorithm(config.tls().hostnameVerification() ? "HTTPS" : null).build();
                String serverName = config.tls().serverName();
                b = b.tls().sslContext(serverName == null || serverName.isBlank() ? context : withServerName(context, serverName.trim()))
                        .environmentBuilder();
            }
            catch (Exception e) {
                throw new IllegalStateException("cannot set up TLS to the stream listener (" + StreamSinkConfig.PREFIX + "tls.*): " + e.getMessage(), e);
            }
        }
        return b.build();
    }

    /**
     * Sends {@code serverName} as SNI: the JDK then checks the certificate against that name (and,
     * failing that, against the host connected to), which is what connecting by IP address or through
     * a proxy needs. Netty's own hook for setting up each engine; the stream client has no setting.
     */
    private static SslContext withServerName(SslContext context, String serverName) {
        SNIHostName sni = new SNIHostName(serverName);
        return new DelegatingSslContext(context) {
            @Override
            protected void initEngine(SSLEngine engine) {
                SSLParameters parameters = engine.getSSLParameters();
                parameters.setServerNames(List.of(sni));
                engine.setSSLParameters(parameters);
            }
        };
    }

    /** A failure to open an environment as a line that says what to check. */
    public static String explain(StreamSinkConfig config, Throwable e) {
        String where = config.host() + ":" + config.port();
        for (Throwable t = e; t != null; t = t.getCause()) {
            if (t instanceof AuthenticationFailureException) {
                return "RabbitMQ Streams at " + where + " refused the log-in of " + config.username() + ": check " + StreamSinkConfig.PREFIX
                        + "username and " + StreamSinkConfig.PREFIX + "password" + config.password().whereToRotate();
            }
            if (t instanceof SSLException || t instanceof CertificateException) {
                return "TLS to RabbitMQ Streams at " + where + " failed: " + t.getMessage() + ": check " + StreamSinkConfig.PREFIX
                        + "tls.trust.store (the CA that signed the broker's certificate) and that the certificate names " + StreamSinkConfig.PREFIX
                        + "host (or set " + StreamSinkConfig.PREFIX + "tls.serverName to the name it carries)";
            }
            if (t instanceof ConnectException) {
                return "cannot connect to RabbitMQ Streams at " + where + " (" + StreamSinkConfig.PREFIX + "host/port): " + t.getMessage()
                        + "; is the rabbitmq_stream plugin enabled (rabbitmq-plugins enable rabbitmq_stream) and its listener on that port?";
            }
        }
        String message = e.getMessage();
        for (Throwable t = e.getCause(); t != null && (message == null || message.isBlank()); t = t.getCause()) {
            message = t.getMessage();
        }
        return "cannot open a connection to RabbitMQ Streams at " + where + " (" + StreamSinkConfig.PREFIX + "host/port, username, virtualHost): "
                + message + "; is the rabbitmq_stream plugin enabled (rabbitmq-plugins enable rabbitmq_stream)?";
    }

    /** Whether {@code name} (a super stream: its first partition) exists. */
    public static boolean exists(Environment env, StreamSinkConfig config, String name) {
        return env.streamExists(config.superStream() ? config.partitionStreams(name).get(0) : name);
    }

    /** Makes {@code name} as {@link #create} does unless it exists: what the sink and redrive do before publishing to it. */
    public static void ensure(Environment env, StreamSinkConfig config, String name) {
        if (!exists(env, config, name)) {
            create(env, config, name);
        }
    }

    /**
     * The broker's last publishing id of producer {@code name} on {@code destination}: the highest
     * over a super stream's partitions, 0 where it has none. Asked with a short-lived producer of
     * that name, so before the caller's own producer of the name is made: the broker takes one
     * producer of a name per stream and connection.
     *
     * @throws StreamException       when a stream cannot be asked (missing, not available)
     * @throws IllegalStateException when the client cannot ask (no connection)
     */
    public static long lastPublishingId(Environment env, StreamSinkConfig config, String name, String destination) {
        long last = 0;
        for (String stream : config.superStream() ? config.partitionStreams(destination) : List.of(destination)) {
            try (Producer probe = env.producerBuilder().name(name).stream(stream).build()) {
                last = Math.max(last, probe.getLastPublishingId());
            }
        }
        return last;
    }

    /**
     * Points {@code b} at {@code destination}: a stream, or a super stream routed by the group id.
     * The group id is the record key, the aggregate id: one aggregate, one partition, its order kept.
     */
    public static ProducerBuilder destination(ProducerBuilder b, StreamSinkConfig config, String destination) {
        return config.superStream() ? b.superStream(destination).routing(msg -> msg.getProperties().getGroupId()).producerBuilder()
                : b.stream(destination);
    }

    /**
     * Makes the stream or super stream {@code name} as the settings describe it (partitions or
     * binding keys, {@code stream.maxAge}, {@code maxLength}, {@code maxSegmentSize}): the one way
     * the sink and {@code check} make one.
     */
    public static void create(Environment env, StreamSinkConfig config, String name) {
        StreamCreator creator = env.streamCreator();
        if (config.superStream()) {
            StreamCreator.SuperStreamConfiguration superStream = creator.name(name).superStream();
            superStream = config.bindingKeys().isEmpty() ? superStream.partitions(config.partitions())
                    : superStream.bindingKeys(config.bindingKeys().toArray(String[]::new));
            creator = superStream.creator();
            LOG.info("Creating super stream '{}' ({})", name, config.bindingKeys().isEmpty() ? config.partitions() + " partitions"
                    : "binding keys " + config.bindingKeys());
        }
        else {
            creator = creator.stream(name);
            LOG.info("Creating stream '{}'", name);
        }
        if (config.maxAge() != null) {
            creator = creator.maxAge(config.maxAge());
        }
        if (config.maxLength() != null && !config.maxLength().isBlank()) {
            creator = creator.maxLengthBytes(ByteCapacity.from(config.maxLength().trim()));
        }
        if (config.maxSegmentSize() != null && !config.maxSegmentSize().isBlank()) {
            creator = creator.maxSegmentSizeBytes(ByteCapacity.from(config.maxSegmentSize().trim()));
        }
        creator.create();
    }

    private static TrustManagerFactory trustManagers(StreamSinkConfig.Tls tls) throws Exception {
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        if (tls.trustStore() == null || tls.trustStore().isBlank()) {
            tmf.init((KeyStore) null);
            return tmf;
        }
        char[] password = tls.trustStorePassword().value() == null ? null : tls.trustStorePassword().value().toCharArray();
        KeyStore store = KeyStore.getInstance(tls.trustStore().endsWith(".jks") ? "JKS" : "PKCS12");
        try (InputStream in = Files.newInputStream(Path.of(tls.trustStore()))) {
            store.load(in, password);
        }
        tmf.init(store);
        LOG.debug("Stream TLS trusts {}", tls.trustStore());
        return tmf;
    }
}
