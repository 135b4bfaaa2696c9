package io.outboxrelay.testing;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import com.rabbitmq.client.Delivery;

/**
 * What an independent consumer received against what was committed: events lost, duplicates (a
 * message id seen again), and whether first deliveries kept per-aggregate order (the payloads
 * {@link OutboxWriter} writes carry the aggregate and a rising sequence).
 */
public record DeliveryCheck(int expected, int lost, int duplicates, List<String> orderViolations) {

    // Two patterns: jsonb reorders keys, so "seq" need not follow "agg".
    private static final Pattern AGG = Pattern.compile("\"agg\":\\s*\"([^\"]+)\"");
    private static final Pattern SEQ = Pattern.compile("\"seq\":\\s*(\\d+)");

    public static DeliveryCheck of(List<Delivery> deliveries, Set<String> committedIds) {
        return check(deliveries.stream().map(d -> Map.entry(String.valueOf(d.getProperties().getMessageId()), d.getBody())).toList(), committedIds);
    }

    /** The same for what a stream holds, read in stream order (a super stream's partitions one after the other). */
    public static DeliveryCheck ofStream(List<StreamedMessage> messages, Set<String> committedIds) {
        return check(messages.stream().map(m -> Map.entry(String.valueOf(m.messageId()), m.body())).toList(), committedIds);
    }

    private static DeliveryCheck check(List<Map.Entry<String, byte[]>> deliveries, Set<String> committedIds) {
        Set<String> seen = new HashSet<>();
        Map<String, Integer> lastSeq = new HashMap<>();
        List<String> violations = new ArrayList<>();
        int duplicates = 0;
        for (Map.Entry<String, byte[]> d : deliveries) {
            String id = d.getKey();
            if (!seen.add(id)) {
                duplicates++;
                continue;
            }
            String body = new String(d.getValue(), StandardCharsets.UTF_8);
            Matcher agg = AGG.matcher(body);
            Matcher seqMatch = SEQ.matcher(body);
            if (agg.find() && seqMatch.find()) {
                int seq = Integer.parseInt(seqMatch.group(1));
                Integer previous = lastSeq.put(agg.group(1), seq);
                if (previous != null && previous >= seq) {
                    violations.add(agg.group(1) + ": " + seq + " after " + previous);
                }
            }
        }
        Set<String> missing = new HashSet<>(committedIds);
        missing.removeAll(seen);
        return new DeliveryCheck(committedIds.size(), missing.size(), duplicates, violations);
    }

    @Override
    public String toString() {
        return expected + " events: " + lost + " lost, " + duplicates + " duplicate(s), " + orderViolations.size() + " order violation(s)";
    }
}
