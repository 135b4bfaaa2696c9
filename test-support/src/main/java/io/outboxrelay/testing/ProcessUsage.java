package io.outboxrelay.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Memory and CPU of a process, read from /proc: what the benchmark reports for the relay and for Debezium Server alike. */
public final class ProcessUsage {

    private ProcessUsage() {
    }

    /** Peak resident memory (VmHWM) in bytes, or -1 when /proc does not say. */
    public static long peakRssBytes(long pid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc", Long.toString(pid), "status"))) {
            if (line.startsWith("VmHWM:")) {
                return Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        }
        return -1;
    }

    /** User plus system CPU time used so far, in seconds (clock ticks at the usual 100 Hz). */
    public static double cpuSeconds(long pid) throws IOException {
        String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
        String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return (Long.parseLong(fields[11]) + Long.parseLong(fields[12])) / 100.0;
    }

    /**
     * CPU seconds of the busiest thread of {@code pid} whose name starts with {@code prefix}: for
     * {@code debezium-postgr} (names are cut at 15 characters), Debezium's streaming thread, the
     * one that decodes every row. 0 when there is none.
     */
    public static double busiestThreadCpuSeconds(long pid, String prefix) throws IOException {
        double busiest = 0;
        try (java.util.stream.Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
            for (Path task : (Iterable<Path>) tasks::iterator) {
                try {
                    if (!Files.readString(task.resolve("comm")).trim().startsWith(prefix)) {
                        continue;
                    }
                    String stat = Files.readString(task.resolve("stat"));
                    String[] fields = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
                    busiest = Math.max(busiest, (Long.parseLong(fields[11]) + Long.parseLong(fields[12])) / 100.0);
                }
                catch (IOException e) {
                    // The thread ended while being read.
                }
            }
        }
        return busiest;
    }
}
