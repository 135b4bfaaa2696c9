package io.outboxrelay.bench;

import com.rabbitmq.client.Delivery;

/**
 * What the benchmark runs a workload through: the relay, or Debezium Server for comparison. Each
 * is a process of its own, started on a new slot for every workload, so that its memory, CPU and
 * start time are its own.
 */
interface Subject {

    /** The name in the table's first column. */
    String label();

    /** Starts it on a new replication slot named {@code slot}; returns once it streams. */
    Running start(BenchDatabase db, String slot) throws Exception;

    /** The RabbitMQ stream it publishes to for the run on {@code slot}, or null when it publishes to the benchmark's exchange. */
    default String stream(String slot) {
        return null;
    }

    /**
     * The delivery as the checks read it: the outbox event id as its message id and the event
     * payload as its body. The relay sends exactly that; Debezium Server carries the id in a header.
     */
    default Delivery normalise(Delivery delivery) {
        return delivery;
    }

    /** A started subject; closing it stops the process (SIGTERM) and waits for it. */
    interface Running extends AutoCloseable {

        long pid();

        /** Every process of it (the shards of a sharded relay); its CPU and memory are their sum. */
        default java.util.List<Long> pids() {
            return java.util.List.of(pid());
        }

        /** Seconds from process start to streaming. */
        double startSeconds();

        /** Kills the process (SIGKILL) and starts it again on the same slot and offsets; returns the new one once it streams. */
        Running killAndRestart() throws Exception;

        @Override
        void close() throws InterruptedException;
    }
}
