package io.outboxrelay.logging;

import org.slf4j.LoggerFactory;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.encoder.Encoder;
import ch.qos.logback.core.joran.spi.ConsoleTarget;

import io.outboxrelay.config.RelaySettings.LogFormat;

/**
 * Switches the console log to {@code relay.log.format}. The format is a setting of the relay's
 * properties file, read after logging has started, so the encoder of the appender that
 * {@code logback.xml} declares is swapped here rather than chosen in XML. JSON lines carry the
 * key/value pairs the relay attaches to messages about one event ({@code event_id},
 * {@code aggregate_id}) as {@code kvpList}.
 */
public final class ConsoleLogFormat {

    private static final String APPENDER = "STDOUT";

    private ConsoleLogFormat() {
    }

    /**
     * For the short commands (check, status, tail, redrive): their own output already says what
     * they reached, so the access trail keeps only refusals there; {@code run} keeps every line.
     */
    public static void auditRefusalsOnly() {
        if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context) {
            context.getLogger("io.outboxrelay.audit").setLevel(ch.qos.logback.classic.Level.WARN);
        }
    }

    /** Undoes {@link #toStandardError()}. */
    public interface Restore extends AutoCloseable {
        @Override
        void close();
    }

    /**
     * Sends the console log to standard error until the returned handle is closed. {@code check}'s
     * standard output is its result lines and nothing else, so that a person, or a script that looks
     * for {@code [FAIL]}, finds no log line between them; what is logged meanwhile (a refused
     * connection, the offset store's connection line, a library's warning) still reaches the
     * terminal. The stream is swapped under the appender's own lock, so no line is dropped, and put
     * back on close, so that a command run inside a longer-lived JVM (the tests) leaves its logging
     * as it found it.
     */
    public static Restore toStandardError() {
        if (!(LoggerFactory.getILoggerFactory() instanceof LoggerContext context)
                || !(context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME).getAppender(APPENDER) instanceof ConsoleAppender<ILoggingEvent> console)
                || ConsoleTarget.SystemErr.getName().equals(console.getTarget())) {
            return () -> {
            };
        }
        String previous = console.getTarget();
        console.setTarget(ConsoleTarget.SystemErr.getName());
        console.setOutputStream(ConsoleTarget.SystemErr.getStream());
        return () -> {
            ConsoleTarget target = ConsoleTarget.findByName(previous);
            console.setTarget(previous);
            console.setOutputStream((target != null ? target : ConsoleTarget.SystemOut).getStream());
        };
    }

    public static void use(LogFormat format) {
        if (format != LogFormat.JSON || !(LoggerFactory.getILoggerFactory() instanceof LoggerContext context)) {
            return;
        }
        Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        if (!(root.getAppender(APPENDER) instanceof ConsoleAppender<ILoggingEvent> console)) {
            return;
        }
        JsonEncoder json = new JsonEncoder();
        json.setContext(context);
        json.setWithSequenceNumber(false);
        json.setWithNanoseconds(false);
        json.setWithContext(false);
        json.start();
        console.stop();
        Encoder<ILoggingEvent> previous = console.getEncoder();
        console.setEncoder(json);
        console.start();
        previous.stop();
    }
}
