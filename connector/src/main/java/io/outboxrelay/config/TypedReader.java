package io.outboxrelay.config;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * Reads typed settings and collects every problem instead of stopping at the first, so that a user
 * sees all of them in one run, one line each, naming the key.
 */
final class TypedReader {

    private final Function<String, String> values;
    private final List<String> problems = new ArrayList<>();

    TypedReader(Function<String, String> values) {
        this.values = values;
    }

    List<String> problems() {
        return problems;
    }

    void problem(String message) {
        problems.add(message);
    }

    String string(String key, String defaultValue) {
        String v = values.apply(key);
        return v == null ? defaultValue : v.trim();
    }

    String required(String key, String what) {
        String v = string(key, null);
        if (v == null || v.isEmpty()) {
            problems.add(key + " is required: " + what);
        }
        return v;
    }

    int integer(String key, int defaultValue, int min, int max) {
        String v = string(key, null);
        if (v == null || v.isEmpty()) {
            return defaultValue;
        }
        try {
            int i = Integer.parseInt(v);
            if (i < min || i > max) {
                problems.add(key + "=" + v + " is out of range: use " + min + ".." + max);
                return defaultValue;
            }
            return i;
        }
        catch (NumberFormatException e) {
            problems.add(key + "=" + v + " is not a whole number");
            return defaultValue;
        }
    }

    Duration millis(String key, long defaultMillis) {
        return Duration.ofMillis(integer(key, (int) Math.min(Integer.MAX_VALUE, defaultMillis), 0, Integer.MAX_VALUE));
    }

    boolean bool(String key, boolean defaultValue) {
        String v = string(key, null);
        if (v == null || v.isEmpty()) {
            return defaultValue;
        }
        if (v.equalsIgnoreCase("true") || v.equalsIgnoreCase("false")) {
            return Boolean.parseBoolean(v);
        }
        problems.add(key + "=" + v + " is not a boolean: use true or false");
        return defaultValue;
    }

    /** An enum written in lower case with '-' for '_', e.g. dead-letter. */
    <E extends Enum<E>> E choice(String key, E defaultValue, Class<E> type) {
        String v = string(key, null);
        if (v == null || v.isEmpty()) {
            return defaultValue;
        }
        try {
            return Enum.valueOf(type, v.toUpperCase(Locale.ROOT).replace('-', '_'));
        }
        catch (IllegalArgumentException e) {
            List<String> allowed = new ArrayList<>();
            for (E c : type.getEnumConstants()) {
                allowed.add(c.name().toLowerCase(Locale.ROOT).replace('_', '-'));
            }
            problems.add(key + "=" + v + " is not one of " + String.join(", ", allowed));
            return defaultValue;
        }
    }
}
