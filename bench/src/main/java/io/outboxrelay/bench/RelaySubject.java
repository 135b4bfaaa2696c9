package io.outboxrelay.bench;

import java.util.Map;

import io.outboxrelay.testing.RelayProcess;

/** The relay as users run it: {@code bin/outbox-relay} with the shipped JVM options. */
final class RelaySubject implements Subject {

    private final int window;
    private final Map<String, String> overrides;
    private final boolean streams;

    /**
     * @param window    the publisher-confirm window, the same as PerfTest's
     * @param overrides lines of configuration added to the benchmark's own ({@code -p key=value})
     */
    RelaySubject(int window, Map<String, String> overrides, boolean streams) {
        this.window = window;
        this.overrides = overrides;
        this.streams = streams;
    }

    @Override
    public String label() {
        return streams ? "outbox-relay stream" : "outbox-relay";
    }

    @Override
    public String stream(String slot) {
        return streams ? BenchRelay.streamName(slot, "relay") : null;
    }

    @Override
    public Running start(BenchDatabase db, String slot) throws Exception {
        Map<String, String> config = BenchRelay.config(db, slot);
        if (streams) {
            config.keySet().removeIf(k -> k.startsWith("debezium.sink.rabbitmq."));
            config.putAll(BenchRelay.streamEndpoints(stream(slot)));
            config.put("debezium.sink.rabbitmqstream.producer.maxUnconfirmedMessages", Integer.toString(window));
        }
        else {
            config.put("debezium.sink.rabbitmq.max.in.flight", Integer.toString(window));
        }
        config.putAll(overrides);
        return running(config, BenchRelay.start(config));
    }

    private static Running running(Map<String, String> config, BenchRelay.Started started) {
        RelayProcess relay = started.relay();
        return new Running() {
            @Override
            public long pid() {
                return relay.pid();
            }

            @Override
            public double startSeconds() {
                return started.startSeconds();
            }

            @Override
            public Running killAndRestart() throws Exception {
                relay.kill();
                return running(config, BenchRelay.start(config));
            }

            @Override
            public void close() throws InterruptedException {
                relay.stop();
            }
        };
    }
}
