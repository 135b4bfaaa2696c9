package io.outboxrelay.check;

/** One line of the preflight: what was checked, how it went, and what to do when it did not. */
public record CheckResult(Status status, String message) {

    public enum Status {
        OK, WARN, FAIL
    }

    static CheckResult ok(String message) {
        return new CheckResult(Status.OK, message);
    }

    static CheckResult warn(String message) {
        return new CheckResult(Status.WARN, message);
    }

    static CheckResult fail(String message) {
        return new CheckResult(Status.FAIL, message);
    }

    @Override
    public String toString() {
        return switch (status) {
            case OK -> "[ OK ] ";
            case WARN -> "[WARN] ";
            case FAIL -> "[FAIL] ";
        } + message;
    }
}
