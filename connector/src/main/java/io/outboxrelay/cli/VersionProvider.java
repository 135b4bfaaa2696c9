package io.outboxrelay.cli;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

import picocli.CommandLine;

/** The version Maven wrote into the jar, with the Debezium and Java versions it runs on. */
final class VersionProvider implements CommandLine.IVersionProvider {

    @Override
    public String[] getVersion() throws IOException {
        Properties p = new Properties();
        try (InputStream in = VersionProvider.class.getResourceAsStream("/outbox-relay-version.properties")) {
            if (in != null) {
                p.load(in);
            }
        }
        return new String[] {
                "outbox-relay " + p.getProperty("version", "unknown"),
                "Debezium " + io.debezium.connector.postgresql.Module.version(),
                "Java " + Runtime.version()
        };
    }
}
