package io.outboxrelay.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import io.outboxrelay.testing.RelayProcess;

/** N relays as users run them, one shard each ({@code relay.shard.count=N}), publishing to the benchmark's exchange. */
final class ShardedRelaySubject implements Subject {

    private final int window;
    private final Map<String, String> overrides;
    private final int shards;

    ShardedRelaySubject(int window, Map<String, String> overrides, int shards) {
        this.window = window;
        this.overrides = overrides;
        this.shards = shards;
    }

    @Override
    public String label() {
        return "outbox-relay x" + shards + " shards";
    }

    @Override
    public Running start(BenchDatabase db, String slot) throws Exception {
        List<Map<String, String>> configs = new ArrayList<>();
        List<RelayProcess> relays = new ArrayList<>();
        double startSeconds = 0;
        for (int k = 0; k < shards; k++) {
            Map<String, String> config = BenchRelay.config(db, slot);
            config.put("debezium.sink.rabbitmq.max.in.flight", Integer.toString(window));
            config.put("relay.shard.count", Integer.toString(shards));
            config.put("relay.shard.index", Integer.toString(k));
            config.putAll(overrides);
            BenchRelay.Started started = BenchRelay.start(config);
            configs.add(config);
            relays.add(started.relay());
            startSeconds = Math.max(startSeconds, started.startSeconds());
        }
        return running(configs, relays, startSeconds);
    }

    private static Running running(List<Map<String, String>> configs, List<RelayProcess> relays, double startSeconds) {
        return new Running() {
            @Override
            public long pid() {
                return relays.get(0).pid();
            }

            @Override
            public List<Long> pids() {
                return relays.stream().map(RelayProcess::pid).toList();
            }

            @Override
            public double startSeconds() {
                return startSeconds;
            }

            @Override
            public Running killAndRestart() throws Exception {
                // One shard dies; the others go on.
                relays.get(0).kill();
                List<RelayProcess> next = new ArrayList<>(relays);
                next.set(0, BenchRelay.start(configs.get(0)).relay());
                return running(configs, next, startSeconds);
            }

            @Override
            public void close() throws InterruptedException {
                for (RelayProcess relay : relays) {
                    relay.stop();
                }
            }
        };
    }
}
