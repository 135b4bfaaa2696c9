package io.outboxrelay.deadletter;

import java.util.List;

/**
 * What a re-drive did.
 *
 * @param republished events the broker confirmed and routed, now marked re-driven
 * @param stillUnroutable events the broker returned again (the binding is still missing); they stay parked
 * @param notRedrivable rows that never became a message (an invalid outbox row), with their reason; they stay parked
 * @param discarded events marked discarded (redrive --discard), not published
 * @param heldBack events not tried because an earlier one of their aggregate stayed parked (relay.dead-letter.order=keep-aggregate)
 */
public record RedriveResult(List<String> republished, List<String> stillUnroutable, List<String> notRedrivable, List<String> discarded,
                            long heldBack) {
}
