package io.outboxrelay.testing;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Pattern;

import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.junit.jupiter.api.extension.LifecycleMethodExecutionExceptionHandler;
import org.junit.jupiter.api.extension.TestExecutionExceptionHandler;

/**
 * Puts the logs of the relays a failing test started into its failure: the last lines of each and
 * its WARN and ERROR lines, attached to the thrown error as a suppressed one, so they reach the
 * test report and the build's console (Failsafe writes a test's own output to a file under
 * {@code target/}, which a CI run on a fresh clone leaves nowhere to read).
 *
 * Registered for every test class through JUnit's extension auto-detection (the parent pom turns it
 * on for Failsafe): no test has to remember it. {@link RelayProcess} records each log it opens; a
 * relay run inside the test's JVM logs, with the test, to {@link #IN_PROCESS} (the modules'
 * {@code logback-test.xml}), of which the part written during the test is shown.
 */
public final class RelayLogs implements BeforeAllCallback, BeforeEachCallback, TestExecutionExceptionHandler, LifecycleMethodExecutionExceptionHandler {

    private static final int TAIL_LINES = 40;
    private static final int MAX_WARNINGS = 40;
    /** A storm starts tens of relays; the newest tell what failed, the others are named. */
    private static final int MAX_LOGS = 4;
    private static final Pattern WARNING = Pattern.compile("\\b(WARN|ERROR)\\b");

    private record Started(Path log, Process process) {
    }

    private static final List<Started> STARTED = new CopyOnWriteArrayList<>();
    /** Where a module's logback-test.xml writes what is logged inside the test's JVM, relative to the module (Failsafe's working directory). */
    static final Path IN_PROCESS = Path.of("target", "relay-logs", "in-process.log");
    private static final ExtensionContext.Namespace NS = ExtensionContext.Namespace.create(RelayLogs.class);

    static void record(Path log, Process process) {
        STARTED.add(new Started(log, process));
    }

    @Override
    public void beforeAll(ExtensionContext context) {
        context.getStore(NS).put("class", STARTED.size());
    }

    @Override
    public void beforeEach(ExtensionContext context) {
        context.getStore(NS).put("test", STARTED.size());
        context.getStore(NS).put("in-process", inProcessSize());
    }

    private static long inProcessSize() {
        try {
            return Files.exists(IN_PROCESS) ? Files.size(IN_PROCESS) : 0;
        }
        catch (IOException e) {
            return 0;
        }
    }

    @Override
    public void handleTestExecutionException(ExtensionContext context, Throwable failure) throws Throwable {
        throw attach(context, failure);
    }

    @Override
    public void handleBeforeEachMethodExecutionException(ExtensionContext context, Throwable failure) throws Throwable {
        throw attach(context, failure);
    }

    @Override
    public void handleAfterEachMethodExecutionException(ExtensionContext context, Throwable failure) throws Throwable {
        throw attach(context, failure);
    }

    @Override
    public void handleBeforeAllMethodExecutionException(ExtensionContext context, Throwable failure) throws Throwable {
        throw attach(context, failure);
    }

    private static Throwable attach(ExtensionContext context, Throwable failure) {
        List<Started> relevant = relevant(context);
        String inProcess = inProcessExcerpt(context);
        if (relevant.isEmpty() && inProcess == null) {
            return failure;
        }
        StringBuilder text = new StringBuilder("what the relays of this test logged (processes newest last):");
        if (inProcess != null) {
            text.append(inProcess);
        }
        int from = Math.max(0, relevant.size() - MAX_LOGS);
        for (int i = 0; i < from; i++) {
            text.append("\n  ").append(relevant.get(i).log()).append(" (left out: only the newest ").append(MAX_LOGS).append(" are shown)");
        }
        for (Started s : relevant.subList(from, relevant.size())) {
            text.append("\n").append(excerpt(s));
        }
        failure.addSuppressed(new Excerpt(text.toString()));
        return failure;
    }

    /** Relays started since the test began, and those the class started before it that are still running. */
    private static List<Started> relevant(ExtensionContext context) {
        Integer testMark = context.getStore(NS).get("test", Integer.class);
        Integer classMark = context.getStore(NS).get("class", Integer.class);
        int classFrom = classMark == null ? STARTED.size() : classMark;
        int testFrom = testMark == null ? STARTED.size() : testMark;
        List<Started> relevant = new ArrayList<>();
        for (int i = classFrom; i < STARTED.size(); i++) {
            Started s = STARTED.get(i);
            if (i >= testFrom || s.process().isAlive()) {
                relevant.add(s);
            }
        }
        return relevant;
    }

    /** What was logged inside this JVM since the test began, when a relay ran in it (a line of the engine's or the sink's). */
    private static String inProcessExcerpt(ExtensionContext context) {
        Long mark = context.getStore(NS).get("in-process", Long.class);
        if (mark == null || !Files.exists(IN_PROCESS)) {
            return null;
        }
        try (java.io.RandomAccessFile file = new java.io.RandomAccessFile(IN_PROCESS.toFile(), "r")) {
            long length = file.length();
            if (length <= mark) {
                return null;
            }
            byte[] bytes = new byte[(int) Math.min(Integer.MAX_VALUE - 8, length - mark)];
            file.seek(mark);
            file.readFully(bytes);
            List<String> lines = List.of(new String(bytes, StandardCharsets.UTF_8).split("\n"));
            if (lines.stream().noneMatch(l -> l.contains("io.outboxrelay") || l.contains("i.o."))) {
                return null;
            }
            return "\n" + excerpt("---- " + IN_PROCESS.toAbsolutePath() + ", the part logged during this test (relays run inside the test's JVM)",
                    lines);
        }
        catch (IOException e) {
            return "\n---- " + IN_PROCESS.toAbsolutePath() + ": cannot be read (" + e + ")";
        }
    }

    static String excerpt(Started s) {
        List<String> lines;
        try {
            lines = Files.readAllLines(s.log(), StandardCharsets.UTF_8);
        }
        catch (IOException e) {
            return "---- " + s.log() + ": cannot be read (" + e + ")";
        }
        return excerpt("---- " + s.log() + " (" + lines.size() + " lines, " + (s.process().isAlive() ? "running" : "exited " + s.process().exitValue())
                + ")", lines);
    }

    private static String excerpt(String heading, List<String> lines) {
        Deque<String> warnings = new ArrayDeque<>();
        int warningCount = 0;
        for (String line : lines.subList(0, Math.max(0, lines.size() - TAIL_LINES))) {
            if (WARNING.matcher(line).find()) {
                warningCount++;
                warnings.addLast(line);
                if (warnings.size() > MAX_WARNINGS) {
                    warnings.removeFirst();
                }
            }
        }
        StringBuilder b = new StringBuilder(heading).append('\n');
        if (warningCount > 0) {
            b.append("  WARN/ERROR lines before the last ").append(TAIL_LINES).append(warningCount > warnings.size()
                    ? " (the last " + warnings.size() + " of " + warningCount + ")" : "").append(":\n");
            warnings.forEach(l -> b.append("  | ").append(l).append('\n'));
        }
        b.append("  last lines:\n");
        lines.subList(Math.max(0, lines.size() - TAIL_LINES), lines.size()).forEach(l -> b.append("  | ").append(l).append('\n'));
        return b.toString();
    }

    /** Carries the excerpt: its message is all it has to say, so no stack trace of its own. */
    static final class Excerpt extends RuntimeException {
        private static final long serialVersionUID = 1L;

        Excerpt(String text) {
            super(text, null, false, false);
        }
    }
}
