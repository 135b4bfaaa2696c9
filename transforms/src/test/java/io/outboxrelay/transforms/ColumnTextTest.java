package io.outboxrelay.transforms;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.util.Date;

import org.junit.jupiter.api.Test;

class ColumnTextTest {

    @Test
    void textAndUuidsAsTheyAre() {
        assertThat(ColumnText.of("OrderCreated")).isEqualTo("OrderCreated");
        assertThat(ColumnText.of("0e7f3a52-6c4d-4b8e-a1f9-3d2c5b6a7e80")).isEqualTo("0e7f3a52-6c4d-4b8e-a1f9-3d2c5b6a7e80");
        assertThat(ColumnText.of(null)).isNull();
    }

    @Test
    void bytesAsLowercaseHexWhetherArrayOrBuffer() {
        byte[] bytes = { 0, 1, (byte) 0xab, (byte) 0xff };
        assertThat(ColumnText.of(bytes)).isEqualTo("0001abff");
        ByteBuffer buffer = ByteBuffer.wrap(new byte[] { 9, 0, 1, (byte) 0xab, (byte) 0xff });
        buffer.get();
        assertThat(ColumnText.of(buffer)).as("from the buffer's position").isEqualTo("0001abff");
        assertThat(buffer.position()).as("which it leaves where it was").isEqualTo(1);
        assertThat(ColumnText.of(new byte[0])).isEmpty();
    }

    @Test
    void numbersInDecimalWithoutAnExponent() {
        assertThat(ColumnText.of(42)).isEqualTo("42");
        assertThat(ColumnText.of(-7L)).isEqualTo("-7");
        assertThat(ColumnText.of(new BigDecimal("1E+3"))).isEqualTo("1000");
        assertThat(ColumnText.of(new BigDecimal("12.50"))).isEqualTo("12.50");
        assertThat(ColumnText.of(true)).isEqualTo("true");
    }

    @Test
    void datesAsIsoInstants() {
        assertThat(ColumnText.of(Date.from(Instant.parse("2026-11-20T07:00:00.250Z")))).isEqualTo("2026-11-20T07:00:00.250Z");
    }
}
