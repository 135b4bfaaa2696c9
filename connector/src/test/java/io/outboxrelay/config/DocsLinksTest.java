package io.outboxrelay.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import org.junit.jupiter.api.Test;

/**
 * Every relative link and #anchor in README.md, docs/ and the modules' READMEs resolves: the file or
 * directory exists, and an anchor is a heading of the Markdown file it points into, by GitHub's
 * rules (lower-cased, punctuation dropped, spaces to hyphens, a repeated heading numbered -1, -2).
 * Moving a section or renaming a heading fails here, naming each link it broke.
 */
class DocsLinksTest {

    private static final Path ROOT = ProjectDocs.root();
    private static final Pattern HEADING = Pattern.compile("^ {0,3}(#{1,6})\\s+(.*?)\\s*#*\\s*$");
    private static final Pattern INLINE_LINK = Pattern.compile("!?\\[[^\\]]*\\]\\(\\s*<?([^)\\s>]+)>?(?:\\s+\"[^\"]*\")?\\s*\\)");
    private static final Pattern REFERENCE_DEFINITION = Pattern.compile("^ {0,3}\\[[^\\]]+\\]:\\s*<?(\\S+?)>?(?:\\s+.*)?$");
    private static final Pattern HTML_ANCHOR = Pattern.compile("<a\\s+(?:id|name)=\"([^\"]+)\"");
    private static final Pattern CODE_SPAN = Pattern.compile("(`+)(.+?)\\1");
    private static final Pattern SCHEME = Pattern.compile("^[A-Za-z][A-Za-z0-9+.-]*:");

    private final Map<Path, Set<String>> anchors = new HashMap<>();

    @Test
    void everyRelativeLinkAndAnchorResolves() throws IOException {
        List<Path> pages = pages();
        assertThat(pages).as("README.md and docs/*.md").contains(ROOT.resolve("README.md"), ROOT.resolve("docs/configuration.md"));
        List<String> broken = new ArrayList<>();
        for (Path page : pages) {
            List<String> lines = proseLines(page);
            for (int i = 0; i < lines.size(); i++) {
                String line = lines.get(i);
                if (line == null) {
                    continue;
                }
                for (String target : targets(line)) {
                    String problem = problem(page, target);
                    if (problem != null) {
                        broken.add(ROOT.relativize(page) + ":" + (i + 1) + ": " + target + " — " + problem);
                    }
                }
            }
        }
        assertThat(broken).as("links that do not resolve").isEmpty();
    }

    @Test
    void theReadmeStaysShort() throws IOException {
        assertThat(Files.readAllLines(ROOT.resolve("README.md"))).as("README.md's lines: the rest belongs in docs/").hasSizeLessThanOrEqualTo(250);
    }

    @Test
    void anchorsFollowGitHub() {
        assertThat(slug("The outbox router SMT (`transforms/`, artifact `outbox-relay-transforms`)"))
                .isEqualTo("the-outbox-router-smt-transforms-artifact-outbox-relay-transforms");
        assertThat(slug("`debezium.sink.type`, `debezium.sink.rabbitmq.*` — the RabbitMQ sink"))
                .isEqualTo("debeziumsinktype-debeziumsinkrabbitmq--the-rabbitmq-sink");
        assertThat(slug("Where a restart resumes, and why nothing is skipped")).isEqualTo("where-a-restart-resumes-and-why-nothing-is-skipped");
        assertThat(slug("Latency against throughput: `max.batch.size`")).isEqualTo("latency-against-throughput-maxbatchsize");
        assertThat(slug("Takeover without the old leader's help")).isEqualTo("takeover-without-the-old-leaders-help");
    }

    /** README.md, every Markdown file under docs/, and the README of each top-level module. */
    private static List<Path> pages() throws IOException {
        List<Path> pages = new ArrayList<>();
        pages.add(ROOT.resolve("README.md"));
        try (Stream<Path> docs = Files.walk(ROOT.resolve("docs"))) {
            docs.filter(p -> p.toString().endsWith(".md")).sorted().forEach(pages::add);
        }
        try (Stream<Path> modules = Files.list(ROOT)) {
            modules.map(m -> m.resolve("README.md")).filter(Files::isRegularFile).sorted().forEach(pages::add);
        }
        return pages;
    }

    /** What is wrong with {@code target} as a link from {@code page}, or null when it resolves. */
    private String problem(Path page, String target) {
        if (SCHEME.matcher(target).find() || target.startsWith("//")) {
            return null; // a URL, not the repository's
        }
        int hash = target.indexOf('#');
        String path = URLDecoder.decode(hash < 0 ? target : target.substring(0, hash), StandardCharsets.UTF_8);
        String fragment = hash < 0 ? null : target.substring(hash + 1);
        Path file = path.isEmpty() ? page : (path.startsWith("/") ? ROOT.resolve(path.substring(1)) : page.getParent().resolve(path)).normalize();
        if (!file.startsWith(ROOT)) {
            return "points outside the repository";
        }
        if (!Files.exists(file)) {
            return "no such file or directory";
        }
        if (fragment == null) {
            return null;
        }
        if (!file.toString().endsWith(".md")) {
            return "an anchor into a file that is not Markdown";
        }
        Set<String> known = anchors.computeIfAbsent(file, DocsLinksTest::anchorsOf);
        return known.contains(URLDecoder.decode(fragment, StandardCharsets.UTF_8)) ? null
                : "no heading with that anchor in " + ROOT.relativize(file) + " (" + String.join(", ", nearest(known, fragment)) + ")";
    }

    private static List<String> nearest(Set<String> known, String fragment) {
        String[] words = fragment.split("-");
        return known.stream().filter(a -> Stream.of(words).filter(w -> w.length() > 3).anyMatch(a::contains)).limit(5).toList();
    }

    /** The anchors GitHub gives the headings of {@code file}, and those of its explicit {@code <a id>} tags. */
    private static Set<String> anchorsOf(Path file) {
        Set<String> found = new LinkedHashSet<>();
        Map<String, Integer> seen = new HashMap<>();
        for (String line : proseLines(file)) {
            if (line == null) {
                continue;
            }
            Matcher h = HEADING.matcher(line);
            if (h.matches()) {
                String slug = slug(h.group(2));
                int n = seen.merge(slug, 1, Integer::sum) - 1;
                found.add(n == 0 ? slug : slug + "-" + n);
            }
            Matcher a = HTML_ANCHOR.matcher(line);
            while (a.find()) {
                found.add(a.group(1));
            }
        }
        return found;
    }

    /** GitHub's anchor for a heading: its text as rendered, lower-cased, without punctuation, spaces as hyphens. */
    static String slug(String heading) {
        String text = INLINE_LINK.matcher(heading).replaceAll(m -> Matcher.quoteReplacement(m.group().replaceAll("^!?\\[([^\\]]*)\\].*$", "$1")));
        text = text.replace("`", "").replace("**", "").replace("*", "");
        return text.toLowerCase(Locale.ROOT).replaceAll("[^\\p{L}\\p{M}\\p{N}\\p{Pc} -]", "").replace(' ', '-');
    }

    /** The file's lines with fenced code blocks blanked (null), so that a `# comment` in a block is no heading and a link in one is not followed. */
    private static List<String> proseLines(Path file) {
        List<String> lines;
        try {
            lines = new ArrayList<>(Files.readAllLines(file));
        }
        catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        String fence = null;
        for (int i = 0; i < lines.size(); i++) {
            String stripped = lines.get(i).stripLeading();
            if (fence == null && (stripped.startsWith("```") || stripped.startsWith("~~~"))) {
                fence = stripped.substring(0, 3);
                lines.set(i, null);
            }
            else if (fence != null) {
                if (stripped.startsWith(fence)) {
                    fence = null;
                }
                lines.set(i, null);
            }
        }
        return lines;
    }

    /** The link targets of one line of prose, code spans left out. */
    private static List<String> targets(String line) {
        String prose = CODE_SPAN.matcher(line).replaceAll("");
        List<String> targets = new ArrayList<>();
        Matcher m = INLINE_LINK.matcher(prose);
        while (m.find()) {
            targets.add(m.group(1));
        }
        Matcher r = REFERENCE_DEFINITION.matcher(prose);
        if (r.matches()) {
            targets.add(r.group(1));
        }
        return targets;
    }
}
