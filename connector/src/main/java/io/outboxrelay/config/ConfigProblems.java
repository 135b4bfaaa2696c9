package io.outboxrelay.config;

import java.util.List;

/** Everything wrong with a configuration, one line per problem, each naming the key to fix. */
public class ConfigProblems extends RuntimeException {

    private final List<String> problems;

    public ConfigProblems(List<String> problems) {
        super(String.join("\n", problems));
        this.problems = List.copyOf(problems);
    }

    public List<String> problems() {
        return problems;
    }
}
