package io.outboxrelay.credentials;

import java.nio.file.Path;
import java.util.Map;
import java.util.Properties;

import org.postgresql.plugin.AuthenticationPlugin;
import org.postgresql.plugin.AuthenticationRequestType;
import org.postgresql.util.PSQLException;
import org.postgresql.util.PSQLState;

/**
 * pgjdbc's hook for a password that changes: the driver makes one of these for every connection it
 * opens and asks it for the password, so the file is read at each (re)connection. Every PostgreSQL
 * connection of the relay is given it through driver properties — Debezium's replication and
 * schema connections ({@code database.*} reach the driver), the offset store's
 * ({@code offset.storage.postgres.driver.*}) and the relay's own.
 */
public final class PasswordFilePlugin implements AuthenticationPlugin {

    /** The driver property naming the file; pgjdbc passes every property through to the plugin. */
    public static final String FILE_PROPERTY = "outboxRelayPasswordFile";
    /** The driver property naming the setting the file holds, for log lines. */
    public static final String KEY_PROPERTY = "outboxRelayPasswordKey";

    private final Properties info;

    /** pgjdbc's {@code ObjectFactory} prefers this constructor and passes the connection's properties. */
    public PasswordFilePlugin(Properties info) {
        this.info = info;
    }

    static Map<String, String> properties(SecretFile file) {
        return Map.of("authenticationPluginClassName", PasswordFilePlugin.class.getName(), FILE_PROPERTY, file.path().toString(), KEY_PROPERTY, file.key());
    }

    @Override
    public char[] getPassword(AuthenticationRequestType type) throws PSQLException {
        String path = info.getProperty(FILE_PROPERTY);
        if (path == null) {
            throw new PSQLException("authenticationPluginClassName=" + PasswordFilePlugin.class.getName() + " needs the driver property "
                    + FILE_PROPERTY + " naming the password file", PSQLState.INVALID_PARAMETER_VALUE);
        }
        try {
            return SecretFile.of(Path.of(path), info.getProperty(KEY_PROPERTY, path)).read().toCharArray();
        }
        catch (IllegalStateException e) {
            throw new PSQLException(e.getMessage(), PSQLState.CONNECTION_REJECTED, e);
        }
    }
}
