package io.outboxrelay.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import com.rabbitmq.client.Channel;
import com.rabbitmq.client.Connection;
import com.rabbitmq.client.ConnectionFactory;

import io.outboxrelay.logging.ConsoleLogFormat;
import io.outboxrelay.audit.ConnectionAudit;
import io.outboxrelay.config.RelayConfig;
import io.outboxrelay.config.StreamSinkConfig;
import io.outboxrelay.sink.amqp.AmqpConnectionFactory;
import io.outboxrelay.sink.stream.StreamEnvironments;
import com.rabbitmq.stream.Environment;
import com.rabbitmq.stream.OffsetSpecification;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "tail", mixinStandardHelpOptions = true,
        description = { "Prints what arrives on the relay's exchange: binds a queue to it and shows each message's id, type, routing key and body.",
                "With debezium.sink.type=rabbitmqstream it reads the stream (or super stream) instead, from --from on." })
final class TailCommand implements Callable<Integer> {

    @Mixin
    ConfigOptions options;

    @Option(names = "--queue", description = "Queue to bind and read (default: a server-named, exclusive queue).")
    String queue;

    @Option(names = "--binding", defaultValue = "#", description = "Binding key (default: ${DEFAULT-VALUE}, everything on a topic exchange).")
    String binding;

    @Option(names = "--declare", description = "Declare the exchange (durable, topic) if it does not exist.")
    boolean declare;

    @Option(names = "--from", defaultValue = "next", description = "Streams only: first, last or next (default: ${DEFAULT-VALUE}, what arrives from now on).")
    String from;

    @Option(names = "--count", defaultValue = "0", description = "Stop after this many messages (default: never).")
    int count;

    @Option(names = "--timeout", defaultValue = "0", description = "Stop after this many seconds (default: never).")
    int timeoutSeconds;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws IOException, TimeoutException, InterruptedException {
        ConsoleLogFormat.auditRefusalsOnly();
        PrintWriter out = spec.commandLine().getOut();
        RelayConfig config = options.load(spec.commandLine().getErr());
        if (config == null) {
            return ConfigOptions.EXIT_CONFIG;
        }
        if (config.streams()) {
            return tailStream(config, out);
        }
        String exchange = config.sink().exchange();
        if (exchange.isEmpty()) {
            spec.commandLine().getErr().println("tail needs debezium.sink.rabbitmq.exchange to know which exchange to read");
            return ConfigOptions.EXIT_CONFIG;
        }
        ConnectionFactory factory = AmqpConnectionFactory.forSink(config.sink());
        try (Connection connection = ConnectionAudit.openBroker(factory, "outbox-relay tail")) {
            Channel channel = connection.createChannel();
            if (declare) {
                channel.exchangeDeclare(exchange, "topic", true);
            }
            String q = queue == null ? channel.queueDeclare().getQueue() : channel.queueDeclare(queue, true, false, false, null).getQueue();
            channel.queueBind(q, exchange, binding);
            out.printf("listening on exchange '%s' (queue %s, binding '%s')%n", exchange, q, binding);
            out.flush();
            CountDownLatch done = new CountDownLatch(count > 0 ? count : Integer.MAX_VALUE);
            channel.basicConsume(q, true, (tag, d) -> {
                out.printf("%s  id=%s type=%s key=%s  %s%n", d.getProperties().getTimestamp() == null ? "-" : d.getProperties().getTimestamp().toInstant(),
                        d.getProperties().getMessageId(), d.getProperties().getType(), d.getEnvelope().getRoutingKey(),
                        new String(d.getBody(), StandardCharsets.UTF_8));
                out.flush();
                done.countDown();
            }, tag -> { });
            if (timeoutSeconds > 0) {
                done.await(timeoutSeconds, TimeUnit.SECONDS);
            }
            else {
                done.await();
            }
        }
        return 0;
    }

    private int tailStream(RelayConfig config, PrintWriter out) throws InterruptedException {
        StreamSinkConfig stream = config.stream();
        if (stream.stream() == null) {
            spec.commandLine().getErr().println("tail needs " + StreamSinkConfig.PREFIX + "stream to know which stream to read");
            return ConfigOptions.EXIT_CONFIG;
        }
        OffsetSpecification offset = switch (from.toLowerCase(java.util.Locale.ROOT)) {
            case "first" -> OffsetSpecification.first();
            case "last" -> OffsetSpecification.last();
            case "next" -> OffsetSpecification.next();
            default -> null;
        };
        if (offset == null) {
            spec.commandLine().getErr().println("--from=" + from + " is not one of first, last, next");
            return ConfigOptions.EXIT_CONFIG;
        }
        Environment env;
        try {
            env = StreamEnvironments.open(stream, "outbox-relay tail");
        }
        catch (RuntimeException e) {
            spec.commandLine().getErr().println(StreamEnvironments.explain(stream, e));
            return 1;
        }
        try (env) {
            CountDownLatch done = new CountDownLatch(count > 0 ? count : Integer.MAX_VALUE);
            var builder = env.consumerBuilder().offset(offset).messageHandler((context, m) -> {
                var p = m.getProperties();
                out.printf("%s  id=%s type=%s key=%s offset=%d  %s%n", p == null || p.getCreationTime() == 0 ? "-" : java.time.Instant.ofEpochMilli(p.getCreationTime()),
                        p == null ? null : p.getMessageIdAsString(), p == null ? null : p.getSubject(), p == null ? null : p.getGroupId(), context.offset(),
                        new String(m.getBodyAsBinary(), StandardCharsets.UTF_8));
                out.flush();
                done.countDown();
            });
            var consumer = stream.superStream() ? builder.superStream(stream.stream()).build() : builder.stream(stream.stream()).build();
            out.printf("reading %s '%s' from %s%n", stream.superStream() ? "super stream" : "stream", stream.stream(), from);
            out.flush();
            if (timeoutSeconds > 0) {
                done.await(timeoutSeconds, TimeUnit.SECONDS);
            }
            else {
                done.await();
            }
            consumer.close();
        }
        catch (RuntimeException e) {
            spec.commandLine().getErr().println("cannot read " + StreamSinkConfig.PREFIX + "stream=" + stream.stream() + ": " + e.getMessage());
            return 1;
        }
        return 0;
    }
}
