package io.outboxrelay.config;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The shipped Kubernetes files agree with the loader and with deploy/sql/relay-role.sql: the
 * ConfigMap's properties file plus the Secret's keys (as the mounted secrets directory) load
 * without a problem, for the role and the publication the script creates, and the kustomization
 * leaves the Secret out so that applying it never overwrites a real one.
 */
class DeployManifestsTest {

    @TempDir
    Path dir;

    @Test
    void theConfigMapAndSecretLoadForTheRoleAndPublicationOfTheRoleScript() throws Exception {
        Path deploy = project().resolve("deploy");
        String configMap = Files.readString(deploy.resolve("kubernetes/configmap.yaml"));
        String properties = configMap.substring(configMap.indexOf("relay.properties: |") + "relay.properties: |".length()).lines()
                .filter(l -> l.startsWith("    ")).map(l -> l.substring(4)).collect(Collectors.joining("\n"));
        Path file = dir.resolve("relay.properties");
        Files.writeString(file, properties);
        Path secrets = Files.createDirectories(dir.resolve("secrets"));
        String secret = Files.readString(deploy.resolve("kubernetes/secret.yaml"));
        Matcher entry = Pattern.compile("^  (\\S+): (\\S+)$", Pattern.MULTILINE).matcher(secret.substring(secret.indexOf("stringData:")));
        int keys = 0;
        while (entry.find()) {
            Files.writeString(secrets.resolve(entry.group(1)), entry.group(2));
            keys++;
        }
        assertThat(keys).as("the Secret's keys").isEqualTo(2);

        RelayConfig config = RelayConfigLoader.load(file, secrets);
        assertThat(config.warnings()).as("no warnings for the shipped configuration").isEmpty();

        String script = Files.readString(deploy.resolve("sql/relay-role.sql"));
        assertThat(script).contains("CREATE ROLE " + config.database().user() + " WITH LOGIN REPLICATION")
                .contains("CREATE PUBLICATION " + config.publicationName() + " FOR TABLE");
        assertThat(config.engineProperties().getProperty("publication.autocreate.mode"))
                .as("the role may not create a publication, so the relay must not try").isEqualTo("disabled");

        String kustomization = Files.readString(deploy.resolve("kubernetes/kustomization.yaml"));
        assertThat(kustomization.lines().filter(l -> l.trim().startsWith("- "))).as("kustomization resources")
                .noneMatch(l -> l.contains("secret.yaml"));
    }

    /** A hot standby beside the leader, a rolling update that starts the new pod before stopping an old one, a budget that keeps one. */
    @Test
    void kubernetesAndComposeRunALeaderAndAStandby() throws Exception {
        Path deploy = project().resolve("deploy");
        String deployment = Files.readString(deploy.resolve("kubernetes/deployment.yaml"));
        assertThat(deployment).contains("replicas: 2", "type: RollingUpdate", "maxUnavailable: 0", "podAntiAffinity").doesNotContain("Recreate");
        assertThat(Files.readString(deploy.resolve("kubernetes/poddisruptionbudget.yaml"))).contains("kind: PodDisruptionBudget", "minAvailable: 1");
        assertThat(Files.readString(deploy.resolve("kubernetes/kustomization.yaml"))).contains("- poddisruptionbudget.yaml");
        assertThat(Files.readString(deploy.resolve("compose.yaml"))).contains("  relay: &relay", "  relay-standby:\n    <<: *relay");
        RelayConfig config = RelayConfigLoader.load(deploy.resolve("compose/relay.properties"), null);
        assertThat(config.relay().leadership().standby()).as("the Compose relays stand by for each other").isTrue();
    }

    /** The shards' StatefulSets: as many shards as standbys, each pod's ordinal its shard, the count from RELAY_SHARD_COUNT. */
    @Test
    void theShardStatefulSetsAgreeOnTheCount() throws Exception {
        String sets = Files.readString(project().resolve("deploy/kubernetes/shards/statefulset.yaml"));
        java.util.List<String> replicas = java.util.regex.Pattern.compile("\n  replicas: (\\d+)").matcher(sets).results().map(m -> m.group(1)).toList();
        java.util.List<String> counts = java.util.regex.Pattern.compile("name: RELAY_SHARD_COUNT\n\\s+value: \"(\\d+)\"").matcher(sets).results()
                .map(m -> m.group(1)).toList();
        assertThat(replicas).hasSize(2).containsOnly(counts.get(0));
        assertThat(counts).hasSize(2).containsOnly(replicas.get(0));
        assertThat(sets).contains("kind: StatefulSet", "name: outbox-relay-shard\n", "name: outbox-relay-shard-standby\n", "podManagementPolicy: Parallel")
                .doesNotContain("RELAY_SHARD_INDEX").doesNotContain("subPath");
        assertThat(Files.readString(project().resolve("deploy/kubernetes/shards/kustomization.yaml"))).contains("- ../configmap.yaml", "- statefulset.yaml");
    }

    /** The kubelet updates a Secret volume in place, which rotation relies on, but never a file mounted with subPath. */
    @Test
    void theSecretIsMountedAsADirectorySoRotationsReachTheRelay() throws Exception {
        String deployment = Files.readString(project().resolve("deploy/kubernetes/deployment.yaml"));
        assertThat(deployment).contains("value: /secrets").contains("mountPath: /secrets").doesNotContain("subPath");
    }

    private static Path project() {
        for (Path p = Path.of(System.getProperty("user.dir")).toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isDirectory(p.resolve("deploy/kubernetes"))) {
                return p;
            }
        }
        throw new IllegalStateException("deploy/kubernetes not found above " + System.getProperty("user.dir"));
    }
}
