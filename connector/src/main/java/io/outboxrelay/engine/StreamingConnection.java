package io.outboxrelay.engine;

import java.lang.management.ManagementFactory;

import javax.management.JMException;
import javax.management.MBeanServer;
import javax.management.ObjectName;

/**
 * Whether the PostgreSQL connector's replication stream is open, as its streaming metrics MBean
 * says. The engine's callbacks only tell that the task started; the stream opens after that (and
 * reopens after a lost walsender), and readiness must wait for it. The MBean is the only place the
 * connector publishes this.
 */
final class StreamingConnection {

    private final MBeanServer server = ManagementFactory.getPlatformMBeanServer();
    private final ObjectName pattern;

    StreamingConnection(String topicPrefix) {
        ObjectName name;
        try {
            name = new ObjectName("debezium.postgres:type=connector-metrics,context=streaming,server=" + topicPrefix + ",*");
        }
        catch (JMException e) {
            // A topic.prefix Debezium had to quote in its MBean name: the stream's state cannot be read, so it is taken as open.
            name = null;
        }
        this.pattern = name;
    }

    boolean connected() {
        if (pattern == null) {
            return true;
        }
        for (ObjectName name : server.queryNames(pattern, null)) {
            try {
                if (Boolean.TRUE.equals(server.getAttribute(name, "Connected"))) {
                    return true;
                }
            }
            catch (JMException e) {
                // Unregistered between the query and the read: the engine is stopping.
            }
        }
        return false;
    }
}
