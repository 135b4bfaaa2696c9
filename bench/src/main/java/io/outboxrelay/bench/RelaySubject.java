package io.outboxrelay.bench;

import java.util.Map;

import io.outboxrelay.testing.RelayProcess;

/** The relay as users run it: {@code bin/outbox-relay} with the shipped JVM options. */
final class RelaySubject implements Subject {

    private final int window;
    private final Map<String, String> overrides;

    /**
     * @param window    the publisher-confirm window, the same as PerfTest's
     * @param overrides lines of configuration added to the benchmark's own ({@code -p key=value})
     */
    RelaySubject(int window, Map<String, String> overrides) {
        this.window = window;
        this.overrides = overrides;
    }

    @Override
    public String label() {
        return "outbox-relay";
    }

    @Override
    public Running start(BenchDatabase db, String slot) throws Exception {
        Map<String, String> config = BenchRelay.config(db, slot);
        config.put("debezium.sink.rabbitmq.max.in.flight", Integer.toString(window));
        config.putAll(overrides);
        BenchRelay.Started started = BenchRelay.start(config);
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
            public void close() throws InterruptedException {
                relay.stop();
            }
        };
    }
}
