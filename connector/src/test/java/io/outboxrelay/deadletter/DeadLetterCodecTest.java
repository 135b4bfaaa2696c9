package io.outboxrelay.deadletter;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.Map;

import org.junit.jupiter.api.Test;

import com.rabbitmq.client.AMQP;

class DeadLetterCodecTest {

    static AMQP.BasicProperties everyKindOfHeader() {
        Map<String, Object> headers = new LinkedHashMap<>();
        headers.put("text", "plain");
        headers.put("int", 42);
        headers.put("long", 1L << 40);
        headers.put("short", (short) 7);
        headers.put("byte", (byte) -3);
        headers.put("double", 2.5d);
        headers.put("float", 1.25f);
        headers.put("bool", true);
        headers.put("decimal", new BigDecimal("12.3400"));
        headers.put("when", new Date(1_700_000_000_123L));
        headers.put("bytes", new byte[] { 0, (byte) 0xff, 0x10, (byte) 0xc3, 0x28 });
        headers.put("empty", null);
        return new AMQP.BasicProperties.Builder().messageId("e-1").type("OrderCreated").contentType("application/json").correlationId("c-9")
                .timestamp(new Date(1_700_000_000_000L)).appId("relay").deliveryMode(2).headers(headers).build();
    }

    @Test
    void everyHeaderKeepsItsValueAndTypeThroughTheTable() throws Exception {
        AMQP.BasicProperties original = everyKindOfHeader();
        AMQP.BasicProperties back = DeadLetterCodec.decode(DeadLetterCodec.encode(original));
        assertThat(back.getMessageId()).isEqualTo("e-1");
        assertThat(back.getType()).isEqualTo("OrderCreated");
        assertThat(back.getContentType()).isEqualTo("application/json");
        assertThat(back.getCorrelationId()).isEqualTo("c-9");
        assertThat(back.getTimestamp()).isEqualTo(new Date(1_700_000_000_000L));
        assertThat(back.getAppId()).isEqualTo("relay");
        assertThat(back.getDeliveryMode()).isEqualTo(2);
        Map<String, Object> h = back.getHeaders();
        assertThat(h).containsEntry("text", "plain").containsEntry("int", 42).containsEntry("long", 1L << 40).containsEntry("short", (short) 7)
                .containsEntry("byte", (byte) -3).containsEntry("double", 2.5d).containsEntry("float", 1.25f).containsEntry("bool", true)
                .containsEntry("decimal", new BigDecimal("12.3400")).containsEntry("when", new Date(1_700_000_000_123L)).containsEntry("empty", null);
        assertThat((byte[]) h.get("bytes")).containsExactly(0, 0xff, 0x10, 0xc3, 0x28);
    }

    @Test
    void rowsWrittenBeforeTypedHeadersReadBackAsStrings() throws Exception {
        String old = "{\"message-id\":\"e-2\",\"type\":\"T\",\"content-type\":null,\"correlation-id\":null,\"timestamp\":5,\"app-id\":\"r\","
                + "\"delivery-mode\":2,\"headers\":{\"id\":\"e-2\",\"traceparent\":\"00-abc-01\"}}";
        AMQP.BasicProperties back = DeadLetterCodec.decode(old);
        assertThat(back.getHeaders()).containsEntry("id", "e-2").containsEntry("traceparent", "00-abc-01");
    }

    @Test
    void aRowThatNeverBecameAMessageHasNoProperties() throws Exception {
        assertThat(DeadLetterCodec.decode(null)).isNull();
        assertThat(DeadLetterCodec.decode("{\"id\":\"x\"}")).isNull();
    }
}
