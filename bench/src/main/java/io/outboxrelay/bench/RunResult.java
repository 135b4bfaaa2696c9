package io.outboxrelay.bench;

/** One workload's figures, one row of the table. */
record RunResult(String workload, String subject, int events, double committedPerSecond, double eventsPerSecond, Percentiles latency, int duplicates, int lost, int orderViolations,
                 long peakRssBytes, double cpuSeconds, double startSeconds, double decoderMicrosPerRow, String perShard) {

    static final String HEADER = String.format("%-33s %-21s %8s %10s %10s %9s %9s %9s %5s %5s %6s %8s %7s %8s %8s %7s",
            "workload", "through", "events", "commits/s", "events/s", "p50 ms", "p99 ms", "max ms", "dups", "lost", "order", "RSS MB", "CPU s",
            "CPU µs/ev", "dec µs/r", "start s");

    String row() {
        return String.format("%-33s %-21s %8d %10s %10.0f %9.1f %9.1f %9.1f %5d %5d %6s %8.0f %7s %8s %8s %7.2f", workload, subject, events,
                Double.isNaN(committedPerSecond) ? "-" : String.format("%.0f", committedPerSecond), eventsPerSecond,
                latency.p50Millis(), latency.p99Millis(), latency.maxMillis(), duplicates, lost, orderViolations == 0 ? "ok" : "BROKEN",
                peakRssBytes / 1048576.0, Double.isNaN(cpuSeconds) ? "-" : String.format("%.1f", cpuSeconds),
                Double.isNaN(cpuSeconds) ? "-" : String.format("%.0f", cpuSeconds * 1e6 / events),
                Double.isNaN(decoderMicrosPerRow) ? "-" : String.format("%.0f", decoderMicrosPerRow), startSeconds)
                + (perShard == null ? "" : "\n" + " ".repeat(35) + perShard);
    }

    boolean verified() {
        return lost == 0 && orderViolations == 0;
    }
}
