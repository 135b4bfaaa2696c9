package io.outboxrelay.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A directory laid out as the kubelet mounts a Secret, and updated as it updates one: every key is
 * a symbolic link {@code key -> ..data/key}, {@code ..data} links to a directory holding this
 * version's files, and an update writes a new version directory and swaps {@code ..data} with one
 * atomic rename. A reader that opens {@code key} again sees the new value; one that kept the old
 * file open, or resolved the link once, does not.
 */
public final class SecretsMount {

    private final Path dir;
    private final AtomicInteger version = new AtomicInteger();

    private SecretsMount(Path dir) {
        this.dir = dir;
    }

    public static SecretsMount create(Path dir, Map<String, String> values) throws IOException {
        SecretsMount mount = new SecretsMount(Files.createDirectories(dir));
        mount.update(values);
        for (String key : values.keySet()) {
            Files.createSymbolicLink(dir.resolve(key), Path.of("..data", key));
        }
        return mount;
    }

    public Path dir() {
        return dir;
    }

    /** Replaces every value at once, as a Secret update does. */
    public void update(Map<String, String> values) throws IOException {
        Path versionDir = Files.createDirectory(dir.resolve("..v" + version.incrementAndGet()));
        for (Map.Entry<String, String> e : values.entrySet()) {
            Files.writeString(versionDir.resolve(e.getKey()), e.getValue());
        }
        Path next = dir.resolve("..data_tmp");
        Files.deleteIfExists(next);
        Files.createSymbolicLink(next, versionDir.getFileName());
        Files.move(next, dir.resolve("..data"), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }
}
