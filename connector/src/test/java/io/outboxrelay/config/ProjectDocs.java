package io.outboxrelay.config;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the documentation tests find README.md and docs/: the repository's top, searched upwards from the module Surefire runs in. */
final class ProjectDocs {

    private ProjectDocs() {
    }

    static Path root() {
        for (Path p = Path.of(System.getProperty("user.dir")).toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("README.md")) && Files.isDirectory(p.resolve("connector")) && Files.isDirectory(p.resolve("docs"))) {
                return p;
            }
        }
        throw new IllegalStateException("README.md and docs/ not found above " + System.getProperty("user.dir"));
    }
}
