package io.outboxrelay.credentials;

import com.rabbitmq.client.impl.CredentialsProvider;

/**
 * amqp-client's hook for credentials that change: it asks for the password each time it opens a
 * connection, and this reads the secrets-directory file then, so the sink's next reconnection logs
 * in with a rotated password.
 */
public final class FileCredentialsProvider implements CredentialsProvider {

    private final String username;
    private final SecretFile password;

    public FileCredentialsProvider(String username, SecretFile password) {
        this.username = username;
        this.password = password;
    }

    @Override
    public String getUsername() {
        return username;
    }

    @Override
    public String getPassword() {
        return password.read();
    }
}
