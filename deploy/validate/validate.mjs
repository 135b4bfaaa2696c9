// Validates deploy/ with real schemas and parsers, so a typo fails CI rather than a rollout:
//  - every Kubernetes manifest against the Kubernetes API's OpenAPI schemas (kubernetes-models),
//    the ServiceMonitor against the Prometheus Operator's CRD schema;
//  - the Grafana dashboard's structure, and each of its queries parsed by promtool (written into
//    a throw-away rule file with the dashboard variables replaced);
//  - the alert rules with promtool check rules, and their unit tests with promtool test rules.
import { readFileSync, readdirSync, writeFileSync, mkdtempSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join, dirname } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import { parseAllDocuments, stringify } from "yaml";

const deploy = join(dirname(fileURLToPath(import.meta.url)), "..");
const problems = [];
let checked = 0;

async function modelFor(apiVersion, kind) {
  if (apiVersion === "monitoring.coreos.com/v1") {
    return (await import("@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1"))[kind];
  }
  const group = apiVersion.includes("/") ? apiVersion : `v1`;
  const module = await import(`kubernetes-models/${group}`);
  return module[kind];
}

const manifests = [
  ...readdirSync(join(deploy, "kubernetes")).filter((f) => f.endsWith(".yaml")),
  ...readdirSync(join(deploy, "kubernetes", "shards")).filter((f) => f.endsWith(".yaml")).map((f) => join("shards", f)),
];
for (const file of manifests) {
  const text = readFileSync(join(deploy, "kubernetes", file), "utf8");
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) {
      problems.push(`kubernetes/${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
      continue;
    }
    const obj = doc.toJS();
    if (obj.kind === "Kustomization") {
      for (const resource of obj.resources) {
        const base = dirname(join(deploy, "kubernetes", file));
        if (!readdirSync(dirname(join(base, resource))).includes(resource.split("/").pop())) {
          problems.push(`kubernetes/${file}: resource ${resource} does not exist`);
        }
      }
      continue;
    }
    const Model = await modelFor(obj.apiVersion, obj.kind);
    if (!Model) {
      problems.push(`kubernetes/${file}: no schema for ${obj.apiVersion} ${obj.kind}`);
      continue;
    }
    try {
      new Model(obj).validate();
      checked++;
      console.log(`ok   kubernetes/${file} ${obj.kind}/${obj.metadata.name}`);
    } catch (e) {
      problems.push(`kubernetes/${file} ${obj.kind}: ${e.message}`);
    }
  }
}

const dashboardFile = join(deploy, "grafana", "outbox-relay-dashboard.json");
const dashboard = JSON.parse(readFileSync(dashboardFile, "utf8"));
for (const key of ["uid", "title", "schemaVersion", "panels", "templating"]) {
  if (dashboard[key] === undefined) problems.push(`grafana dashboard: no ${key}`);
}
const ids = new Set();
const rules = [];
for (const panel of dashboard.panels) {
  if (ids.has(panel.id)) problems.push(`grafana dashboard: panel id ${panel.id} used twice`);
  ids.add(panel.id);
  const g = panel.gridPos ?? {};
  if (![g.x, g.y, g.w, g.h].every(Number.isInteger) || g.x + g.w > 24) problems.push(`grafana panel "${panel.title}": bad gridPos`);
  if (!["timeseries", "stat"].includes(panel.type)) problems.push(`grafana panel "${panel.title}": unexpected type ${panel.type}`);
  if (!panel.targets?.length) problems.push(`grafana panel "${panel.title}": no queries`);
  for (const target of panel.targets ?? []) {
    const expr = target.expr.replaceAll("$__rate_interval", "5m").replaceAll("$relay", ".*");
    rules.push({ record: `dashboard:panel_${panel.id}_${target.refId}`, expr });
  }
}
const variables = new Set(dashboard.templating.list.map((v) => v.name));
for (const used of JSON.stringify(dashboard.panels).matchAll(/\$\{?(\w+)\}?/g)) {
  if (!used[1].startsWith("__") && !variables.has(used[1])) problems.push(`grafana dashboard: variable $${used[1]} is not defined`);
}
const scratch = mkdtempSync(join(tmpdir(), "outbox-relay-validate-"));
writeFileSync(join(scratch, "dashboard-queries.yaml"), stringify({ groups: [{ name: "dashboard", rules }] }));

function promtool(...args) {
  try {
    console.log(execFileSync("promtool", args, { cwd: join(deploy, "prometheus"), encoding: "utf8" }).trim());
  } catch (e) {
    problems.push(`promtool ${args.join(" ")}: ${(e.stdout ?? "") + (e.stderr ?? e.message)}`);
  }
}
promtool("check", "rules", join(scratch, "dashboard-queries.yaml"));
promtool("check", "rules", "outbox-relay-alerts.yaml");
promtool("test", "rules", "outbox-relay-alerts.test.yaml");

if (problems.length) {
  for (const p of problems) console.error(`FAIL ${p}`);
  process.exit(1);
}
console.log(`deploy/ is valid: ${checked} Kubernetes objects, ${dashboard.panels.length} dashboard panels (${rules.length} queries), alert rules and their tests`);
