package io.outboxrelay.credentials;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One file of the secrets directory, read again at every connection attempt, so that a credential
 * rotated in place (a Kubernetes Secret mount swaps its files atomically) is used by the next
 * connection without a restart. There is one instance per file and it owns the fingerprint of what
 * was read last: a change is logged once, by the setting's name, never with the value.
 */
public final class SecretFile {

    private static final Logger LOG = LoggerFactory.getLogger(SecretFile.class);
    private static final ConcurrentMap<Path, SecretFile> FILES = new ConcurrentHashMap<>();

    private final Path path;
    private final String key;
    private byte[] fingerprint;
    private String lastValue;

    private SecretFile(Path path, String key) {
        this.path = path;
        this.key = key;
    }

    /** The one instance for the file at {@code path}, which holds setting {@code key}. */
    public static SecretFile of(Path path, String key) {
        return FILES.computeIfAbsent(path.toAbsolutePath().normalize(), p -> new SecretFile(p, key));
    }

    public Path path() {
        return path;
    }

    /** The setting this file holds, e.g. {@code debezium.source.database.password}. */
    public String key() {
        return key;
    }

    /**
     * The file's content now, lines joined as SmallRye Config's file source joins them. When the
     * file cannot be read (replaced at this very moment, say) the value read last is used, with a warning.
     */
    public synchronized String read() {
        String value;
        try (Stream<String> lines = Files.lines(path, StandardCharsets.UTF_8)) {
            value = lines.collect(Collectors.joining());
        }
        catch (IOException | UncheckedIOException e) {
            if (lastValue == null) {
                throw new IllegalStateException("cannot read " + path + " (the secrets-directory file for " + key + "): " + e.getMessage(), e);
            }
            LOG.warn("Cannot read {} (the secrets-directory file for {}): {}; using the value read before", path, key, e.getMessage());
            return lastValue;
        }
        byte[] now = sha256(value);
        if (fingerprint != null && !MessageDigest.isEqual(fingerprint, now)) {
            LOG.info("Picked up a changed credential: {} in {} differs from the value read before; this connection uses the new one", key, path);
        }
        fingerprint = now;
        lastValue = value;
        return value;
    }

    private static byte[] sha256(String value) {
        try {
            return MessageDigest.getInstance("SHA-256").digest(value.getBytes(StandardCharsets.UTF_8));
        }
        catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is part of every JRE", e);
        }
    }

    @Override
    public String toString() {
        return path.toString();
    }
}
