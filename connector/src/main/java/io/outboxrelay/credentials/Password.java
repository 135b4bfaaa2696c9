package io.outboxrelay.credentials;

import java.util.Map;

/**
 * A password as the relay was given it: a fixed value (from the properties file, the environment or
 * a system property), or a file of the secrets directory that is read again at every connection
 * attempt. Its {@link #toString()} never shows the value, so a record holding one can be logged.
 */
public final class Password {

    private static final Password NONE = new Password(null, null);

    private final String fixed;
    private final SecretFile file;

    private Password(String fixed, SecretFile file) {
        this.fixed = fixed;
        this.file = file;
    }

    public static Password fixed(String value) {
        return value == null ? NONE : new Password(value, null);
    }

    public static Password inFile(SecretFile file) {
        return new Password(null, file);
    }

    /** The value to log in with now: for a file, what it holds at this moment. */
    public String value() {
        return file != null ? file.read() : fixed;
    }

    public boolean isSet() {
        return file != null || fixed != null;
    }

    /** The secrets-directory file this is read from, or null for a fixed value. */
    public SecretFile file() {
        return file;
    }

    /** pgjdbc properties that log in with this password: a file's through {@link PasswordFilePlugin}, read at each connection. */
    public Map<String, String> pgjdbcProperties() {
        if (file != null) {
            return PasswordFilePlugin.properties(file);
        }
        return fixed == null ? Map.of() : Map.of("password", fixed);
    }

    /** Where a failed log-in should send the user: the file, which is read again at every attempt, or nothing for a fixed value. */
    public String whereToRotate() {
        return file == null ? "" : " (read again from " + file.path() + " at every attempt)";
    }

    @Override
    public String toString() {
        return file != null ? "(from " + file.path() + ")" : fixed != null ? "****" : "(none)";
    }
}
