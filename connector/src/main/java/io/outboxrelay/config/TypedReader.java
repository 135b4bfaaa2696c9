package io.outboxrelay.config;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigException;

/**
 * Reads typed settings and collects every problem instead of stopping at the first, so that a user
 * sees all of them in one run, one line each, naming the key.
 */
final class TypedReader {

    private static final Pattern RANGE = Pattern.compile("\\[(-?\\d+),\\.\\.\\.,(-?\\d+)]");
    private static final Pattern AT_LEAST = Pattern.compile("\\[(-?\\d+),\\.\\.\\.]");

    private final Function<String, String> values;
    private final List<String> problems = new ArrayList<>();

    TypedReader(Function<String, String> values) {
        this.values = values;
    }

    List<String> problems() {
        return problems;
    }

    /**
     * Reads every key {@code def} declares, parsed and validated as declared; a missing or empty
     * value takes the default, a wrong one is a problem naming key and value (and then takes the
     * default, so that the other problems are still found).
     */
    Declared declared(ConfigDef def) {
        Map<String, Object> values = new HashMap<>();
        Set<String> given = new HashSet<>();
        for (ConfigDef.ConfigKey key : def.configKeys().values()) {
            Object value = key.defaultValue;
            String raw = string(key.name, null);
            if (raw != null && !raw.isEmpty()) {
                try {
                    value = ConfigDef.parseType(key.name, raw, key.type);
                    if (key.validator != null) {
                        key.validator.ensureValid(key.name, value);
                    }
                    given.add(key.name);
                }
                catch (ConfigException e) {
                    problems.add(key.name + "=" + raw + " " + reason(e, key));
                    value = key.defaultValue;
                }
            }
            values.put(key.name, value);
        }
        return new Declared(values, given);
    }

    /** Kafka says "Invalid value x for configuration k: why"; the key and value are already in front, so only the why is kept. */
    private static String reason(ConfigException e, ConfigDef.ConfigKey key) {
        String message = String.valueOf(e.getMessage());
        int colon = message.indexOf(": ");
        String why = colon >= 0 ? message.substring(colon + 2) : message;
        return switch (key.type) {
            case BOOLEAN -> "is not a boolean: use true or false";
            case INT, LONG, SHORT -> why.startsWith("Not a number") ? "is not a whole number" : "is out of range: " + range(key, why);
            default -> why.startsWith("String must be one of") ? "is not one of " + why.substring(why.indexOf(':') + 1).trim().toLowerCase(Locale.ROOT)
                    : "is invalid: " + why;
        };
    }

    /** Kafka's Range prints itself as [min,...,max] or [min,...]: as "use min..max" or "use at least min". */
    private static String range(ConfigDef.ConfigKey key, String why) {
        String r = String.valueOf(key.validator);
        Matcher both = RANGE.matcher(r);
        if (both.matches()) {
            return "use " + both.group(1) + ".." + both.group(2);
        }
        Matcher min = AT_LEAST.matcher(r);
        return min.matches() ? "use at least " + min.group(1) : why;
    }

    /**
     * The values of one declared namespace, by full key. A key asked for that the namespace does not
     * declare is the loader's mistake (a misspelt literal), not the user's: it fails every load at
     * once instead of reading null, so no test can pass over it.
     */
    record Declared(Map<String, Object> values, Set<String> given) {

        private Object value(String key) {
            if (!values.containsKey(key)) {
                throw new IllegalArgumentException(key + " is not declared in " + Settings.class.getName() + ": declare it there, or fix the name");
            }
            return values.get(key);
        }

        /** Whether the configuration set {@code key}, rather than its default applying. */
        boolean isGiven(String key) {
            value(key);
            return given.contains(key);
        }

        String string(String key) {
            return (String) value(key);
        }

        int integer(String key) {
            return ((Number) value(key)).intValue();
        }

        long number(String key) {
            return ((Number) value(key)).longValue();
        }

        Duration millis(String key) {
            return Duration.ofMillis(number(key));
        }

        boolean bool(String key) {
            return (Boolean) value(key);
        }

        @SuppressWarnings("unchecked")
        List<String> list(String key) {
            return ((List<String>) value(key)).stream().map(String::trim).filter(s -> !s.isEmpty()).toList();
        }

        /** An enum written in lower case with '-' for '_', e.g. dead-letter. */
        <E extends Enum<E>> E choice(String key, Class<E> type) {
            return Enum.valueOf(type, string(key).trim().toUpperCase(Locale.ROOT).replace('-', '_'));
        }
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
