package io.outboxrelay.config;

import java.util.Collection;

import org.apache.commons.text.similarity.LevenshteinDistance;

/** The known name a mistyped one was probably meant to be. */
final class Suggestions {

    private Suggestions() {
    }

    /** The name in {@code known} within a few typed characters of {@code name} (about one in five), or null. */
    static String closest(String name, Collection<String> known) {
        LevenshteinDistance distance = new LevenshteinDistance(Math.max(2, name.length() / 5));
        String best = null;
        int bestDistance = Integer.MAX_VALUE;
        for (String k : known) {
            int d = distance.apply(name, k);
            if (d >= 0 && d < bestDistance) {
                bestDistance = d;
                best = k;
            }
        }
        return best;
    }
}
