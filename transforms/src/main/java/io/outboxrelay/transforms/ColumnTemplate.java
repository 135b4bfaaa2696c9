package io.outboxrelay.transforms;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.connect.data.Struct;

/**
 * A string with {@code ${column}} placeholders over the outbox row, e.g.
 * {@code ${aggregatetype}.${type}}. Parsed once at configuration; rendering is a single pass.
 */
final class ColumnTemplate {

    private static final Pattern PLACEHOLDER = Pattern.compile("\\$\\{([^}]+)}");

    private final String key;
    private final String source;
    private final List<String> literals = new ArrayList<>();
    private final List<String> columns = new ArrayList<>();

    private ColumnTemplate(String key, String source) {
        this.key = key;
        this.source = source;
        Matcher m = PLACEHOLDER.matcher(source);
        int last = 0;
        while (m.find()) {
            literals.add(source.substring(last, m.start()));
            columns.add(m.group(1).trim());
            last = m.end();
        }
        literals.add(source.substring(last));
        if (source.substring(last).contains("${")) {
            throw new ConfigException(key, source, "has an unclosed ${ placeholder");
        }
    }

    /** The columns its placeholders name. */
    List<String> columns() {
        return List.copyOf(columns);
    }

    /** The template for {@code key}, or null when the value is unset or blank. */
    static ColumnTemplate parse(String key, String value) {
        return value == null || value.isBlank() ? null : new ColumnTemplate(key, value);
    }

    /**
     * Renders the template over {@code row}.
     *
     * @throws InvalidOutboxEventException when a named column is missing or null
     */
    String render(Struct row) {
        return render(column -> row.schema().field(column) != null, row::get);
    }

    /** Renders the template over a row read some other way (by {@code outbox-relay check}, from the table itself). */
    String render(Map<String, ?> row) {
        return render(row::containsKey, row::get);
    }

    private String render(Predicate<String> has, Function<String, Object> valueOf) {
        StringBuilder out = new StringBuilder(source.length() + 16);
        for (int i = 0; i < columns.size(); i++) {
            out.append(literals.get(i));
            String column = columns.get(i);
            if (!has.test(column)) {
                throw new InvalidOutboxEventException(key + " names column '" + column + "', which the outbox table does not have");
            }
            Object value = valueOf.apply(column);
            if (value == null) {
                throw new InvalidOutboxEventException(key + " names column '" + column + "', which is null in this row");
            }
            out.append(ColumnText.of(value));
        }
        return out.append(literals.get(columns.size())).toString();
    }
}
