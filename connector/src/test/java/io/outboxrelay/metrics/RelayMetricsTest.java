package io.outboxrelay.metrics;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class RelayMetricsTest {

    @Test
    void theExchangeLabelTakesABoundedNumberOfValues() {
        RelayMetrics metrics = RelayMetrics.inMemory();
        for (int i = 0; i < RelayMetrics.MAX_EXCHANGES + 50; i++) {
            metrics.published("events." + i);
        }
        metrics.published("events.0");
        assertThat(metrics.registry().find("outbox.relay.events.published").counters()).hasSize(RelayMetrics.MAX_EXCHANGES + 1);
        assertThat(metrics.registry().get("outbox.relay.events.published").tag("exchange", RelayMetrics.OTHER_EXCHANGE).counter().count()).isEqualTo(50);
        assertThat(metrics.registry().get("outbox.relay.events.published").tag("exchange", "events.0").counter().count()).isEqualTo(2);
    }
}
