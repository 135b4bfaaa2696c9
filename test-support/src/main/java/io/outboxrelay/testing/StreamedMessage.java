package io.outboxrelay.testing;

import java.util.Map;

/** One message as a stream holds it, read back by an independent consumer. */
public record StreamedMessage(String stream, long offset, String messageId, String groupId, String subject, String contentType,
                              Map<String, Object> applicationProperties, byte[] body) {
}
