package io.outboxrelay.config;

/** The source database as the connector sees it; the offset store and dead-letter table default to it. */
public record DatabaseSettings(String host, int port, String user, String password, String database) {

    public String jdbcUrl() {
        return "jdbc:postgresql://" + host + ":" + port + "/" + database;
    }

    @Override
    public String toString() {
        return "DatabaseSettings[" + user + "@" + host + ":" + port + "/" + database + "]";
    }
}
