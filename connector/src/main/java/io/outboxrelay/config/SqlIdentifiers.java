package io.outboxrelay.config;

/**
 * Names from the configuration (tables, columns, publications) written into SQL. PostgreSQL's JDBC
 * driver binds values, not identifiers, so each is quoted here, in one place.
 */
public final class SqlIdentifiers {

    private SqlIdentifiers() {
    }

    /** An identifier (a publication's, a column's) quoted for SQL. */
    public static String quote(String identifier) {
        return "\"" + identifier.replace("\"", "\"\"") + "\"";
    }

    /** A table name, {@code schema.table} or bare, quoted for SQL. */
    public static String quoteQualified(String table) {
        int dot = table.indexOf('.');
        return dot < 0 ? quote(table) : quote(table.substring(0, dot)) + "." + quote(table.substring(dot + 1));
    }
}
