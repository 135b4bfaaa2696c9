package io.outboxrelay.logging;

import org.slf4j.LoggerFactory;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.encoder.Encoder;

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
