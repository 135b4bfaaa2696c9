package io.outboxrelay.config;

import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Expands {@code ${name}} and {@code ${name:default}} from the configuration or the environment,
 * and leaves every placeholder it cannot resolve as it is. Debezium's own placeholders, such as
 * {@code ${routedByValue}} in {@code route.topic.replacement}, must reach Debezium verbatim, which
 * SmallRye Config's expression expansion does not allow (it fails on an unknown name); hence this.
 * {@code \${...}}, the escape Debezium Server users write, yields a literal {@code ${...}}.
 */
final class Placeholders {

    private static final Pattern PLACEHOLDER = Pattern.compile("(\\\\)?\\$\\{([^}:]+)(?::([^}]*))?}");

    private Placeholders() {
    }

    /** The names of the placeholders in {@code raw} that neither resolve nor have a default (escaped ones are literal text, not placeholders). */
    static java.util.List<String> unresolved(String raw, Function<String, String> lookup) {
        java.util.List<String> names = new java.util.ArrayList<>();
        if (raw == null || !raw.contains("${")) {
            return names;
        }
        Matcher m = PLACEHOLDER.matcher(raw);
        while (m.find()) {
            if (m.group(1) == null && m.group(3) == null && lookup.apply(m.group(2)) == null) {
                names.add(m.group(2));
            }
        }
        return names;
    }

    static String expand(String raw, Function<String, String> lookup) {
        if (raw == null || !raw.contains("${")) {
            return raw;
        }
        Matcher m = PLACEHOLDER.matcher(raw);
        StringBuilder out = new StringBuilder();
        while (m.find()) {
            String replacement;
            if (m.group(1) != null) {
                replacement = m.group(0).substring(1);
            }
            else {
                String value = lookup.apply(m.group(2));
                replacement = value != null ? value : m.group(3) != null ? m.group(3) : m.group(0);
            }
            m.appendReplacement(out, Matcher.quoteReplacement(replacement));
        }
        m.appendTail(out);
        return out.toString();
    }
}
