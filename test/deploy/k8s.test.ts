import t from "tap";
import { existsSync, readdirSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { Consumers, Streams } from "@notify/contracts";
import { createMetrics, startHealthServer } from "@notify/metrics";
import { GATEWAY_PORT, METRICS_PORT, SERVICES, WORKERS, at, get, isObj, listAt, loadYaml, loadYamlDocuments, mainOf, objAt, run, type Obj } from "./support.js";

const K8S = at("deploy", "k8s");
const kustomization = loadYaml("deploy", "k8s", "kustomization.yaml");
const resources = listAt(kustomization, "resources").map(String);
const docs: { file: string; doc: Obj }[] = resources.flatMap((file) =>
  existsSync(at("deploy", "k8s", file)) ? loadYamlDocuments(at("deploy", "k8s", file)).map((doc) => ({ file, doc })) : [],
);

const KINDS: Record<string, string> = {
  Namespace: "v1",
  ConfigMap: "v1",
  Service: "v1",
  Deployment: "apps/v1",
  PodDisruptionBudget: "policy/v1",
  ScaledObject: "keda.sh/v1alpha1",
};
/** Environment variables that carry secrets: never a literal value, always a secretKeyRef. */
const SECRET_ENV = ["WECHAT_APP_SECRET", "GATEWAY_API_KEYS", "NATS_PASS", "NATS_TOKEN", "NATS_NKEY_SEED", "NATS_USER", "ALERT_WEBHOOK_URL", "DATABASE_URL"];

const ofKind = (kind: string) => docs.filter((d) => d.doc.kind === kind).map((d) => d.doc);
const named = (kind: string, name: string) => ofKind(kind).find((d) => get(d, "metadata", "name") === name);
const containerOf = (deploy: Obj | undefined): Obj => objAt(listAt(deploy, "spec", "template", "spec", "containers")[0]);
const envList = (c: Obj): Obj[] => listAt(c, "env").filter(isObj);
const envValue = (c: Obj, name: string): string | undefined => {
  const e = envList(c).find((e) => e.name === name);
  return e && "value" in e ? String(e.value) : undefined;
};
const matches = (selector: Obj, labels: Obj) => Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);
/** A probe's port as a number: named ports resolve through the container's ports. */
function portNumber(c: Obj, port: unknown): number | undefined {
  if (typeof port === "number") return port;
  const p = listAt(c, "ports").find((p) => get(p, "name") === port);
  return p === undefined ? undefined : Number(get(p, "containerPort"));
}

t.test("k8s - the kustomization lists existing files and every document parses", async (t) => {
  t.equal(kustomization.kind, "Kustomization");
  t.ok(resources.length > 0, "resources listed");
  for (const file of resources) t.ok(existsSync(at("deploy", "k8s", file)), `${file} exists`);
  const listed = new Set(resources);
  for (const f of readdirSync(K8S).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")) {
    t.doesNotThrow(() => loadYamlDocuments(at("deploy", "k8s", f)), `${f} parses`);
    if (!listed.has(f)) t.equal(f, "secret.example.yaml", `${f} is the only manifest outside the kustomization`);
  }
});

t.test("k8s - every document has a known kind, its apiVersion and a name", async (t) => {
  t.ok(docs.length >= 10, `${docs.length} documents`);
  for (const { file, doc } of docs) {
    const kind = String(doc.kind);
    t.ok(kind in KINDS, `${file}: kind ${kind} is expected`);
    t.equal(doc.apiVersion, KINDS[kind], `${file}: ${kind} uses ${KINDS[kind]}`);
    t.ok(get(doc, "metadata", "name"), `${file}: ${kind} has a name`);
  }
  for (const name of SERVICES) t.ok(named("Deployment", name), `Deployment ${name}`);
  t.ok(named("Service", "gateway"), "Service gateway");
  t.equal(ofKind("ScaledObject").length, 1, "one ScaledObject");
});

t.test("k8s - Deployment selectors match their pod labels and run the service's command", async (t) => {
  for (const name of SERVICES) {
    const d = named("Deployment", name);
    const selector = objAt(d, "spec", "selector", "matchLabels");
    const labels = objAt(d, "spec", "template", "metadata", "labels");
    t.ok(matches(selector, labels), `${name}: selector ${JSON.stringify(selector)} matches the pod labels`);
    const c = containerOf(d);
    t.notOk(c.command, `${name}: no command override (the image's tini entrypoint stays PID 1)`);
    t.same(c.args, ["node", mainOf(name)], `${name}: args node ${mainOf(name)}`);
    t.equal(c.image, "notify-orchestrator", `${name}: the one image (tag set by the kustomization)`);
    // No other Deployment's pods are selected by this selector.
    for (const other of SERVICES.filter((o) => o !== name)) {
      t.notOk(matches(selector, objAt(named("Deployment", other), "spec", "template", "metadata", "labels")), `${name}'s selector does not catch ${other}`);
    }
  }
  t.ok(
    listAt(kustomization, "images").some((i) => get(i, "name") === "notify-orchestrator" && get(i, "newName")),
    "the kustomization sets the image",
  );
});

t.test("k8s - probes hit /healthz and /readyz on the port the service listens on", async (t) => {
  for (const name of SERVICES) {
    const c = containerOf(named("Deployment", name));
    const expected =
      name === "gateway" ? Number(envValue(c, "GATEWAY_PORT") ?? GATEWAY_PORT) : Number(envValue(c, "METRICS_PORT") ?? METRICS_PORT);
    t.equal(expected, name === "gateway" ? GATEWAY_PORT : METRICS_PORT, `${name}: listens on the documented default port`);
    t.ok(
      listAt(c, "ports").some((p) => Number(get(p, "containerPort")) === expected),
      `${name}: containerPort ${expected}`,
    );
    t.equal(get(c, "livenessProbe", "httpGet", "path"), "/healthz", `${name}: liveness /healthz`);
    t.equal(get(c, "readinessProbe", "httpGet", "path"), "/readyz", `${name}: readiness /readyz`);
    if (c.startupProbe) t.equal(get(c, "startupProbe", "httpGet", "path"), "/healthz", `${name}: startup /healthz`);
    for (const probe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
      if (!c[probe]) continue;
      t.equal(portNumber(c, get(c, probe, "httpGet", "port")), expected, `${name}: ${probe} on port ${expected}`);
    }
  }
});

t.test("k8s - the workers' health server answers the probe paths the manifests use", async (t) => {
  const metrics = createMetrics("deploy-probe-test");
  const server = await startHealthServer({ port: 0, host: "127.0.0.1", registry: metrics.registry, ready: () => true });
  t.teardown(() => server.close());
  for (const name of WORKERS) {
    const d = named("Deployment", name);
    const c = containerOf(d);
    const paths = ["livenessProbe", "readinessProbe", "startupProbe"]
      .map((p) => get(c, p, "httpGet", "path"))
      .concat(get(d, "spec", "template", "metadata", "annotations", "prometheus.io/path"))
      .filter((p): p is string => typeof p === "string");
    for (const p of paths) {
      const res = await fetch(`${server.url}${p}`);
      t.equal(res.status, 200, `${name}: GET ${p} → 200`);
    }
  }
});

t.test("k8s - Deployments set resources, graceful termination and a non-root security context", async (t) => {
  for (const name of SERVICES) {
    const d = named("Deployment", name);
    const pod = objAt(d, "spec", "template", "spec");
    const c = containerOf(d);
    for (const r of ["cpu", "memory"]) t.ok(get(c, "resources", "requests", r), `${name}: requests.${r}`);
    t.ok(get(c, "resources", "limits", "memory"), `${name}: limits.memory`);
    // Services drain for up to 25 s on SIGTERM (libs/runtime): the grace period covers it.
    t.ok(Number(pod.terminationGracePeriodSeconds) >= 30, `${name}: terminationGracePeriodSeconds >= 30`);
    t.equal(get(pod, "securityContext", "runAsNonRoot"), true, `${name}: runAsNonRoot`);
    t.not(get(pod, "securityContext", "runAsUser"), 0, `${name}: not uid 0`);
    t.equal(get(c, "securityContext", "allowPrivilegeEscalation"), false, `${name}: no privilege escalation`);
    t.same(get(c, "securityContext", "capabilities", "drop"), ["ALL"], `${name}: drops all capabilities`);
    t.equal(get(c, "securityContext", "readOnlyRootFilesystem"), true, `${name}: read-only root filesystem`);
    t.ok(
      listAt(c, "envFrom").some((e) => get(e, "configMapRef", "name") === "notify-config"),
      `${name}: non-secret settings from the notify-config ConfigMap`,
    );
  }
  const preStop = get(containerOf(named("Deployment", "gateway")), "lifecycle", "preStop");
  t.ok(preStop, "gateway: preStop delay so the endpoint leaves the Service before SIGTERM");
});

t.test("k8s - the gateway Service selects the gateway pods and targets its port", async (t) => {
  const svc = named("Service", "gateway");
  const d = named("Deployment", "gateway");
  t.ok(matches(objAt(svc, "spec", "selector"), objAt(d, "spec", "template", "metadata", "labels")), "selector matches the gateway pods");
  for (const other of SERVICES.filter((s) => s !== "gateway")) {
    t.notOk(matches(objAt(svc, "spec", "selector"), objAt(named("Deployment", other), "spec", "template", "metadata", "labels")), `does not select ${other}`);
  }
  const c = containerOf(d);
  for (const p of listAt(svc, "spec", "ports")) {
    t.equal(portNumber(c, get(p, "targetPort")), GATEWAY_PORT, `Service port ${String(get(p, "port"))} → container ${GATEWAY_PORT}`);
  }
});

t.test("k8s - secrets are referenced by name, never inlined", async (t) => {
  t.equal(ofKind("Secret").length, 0, "no Secret among the kustomization's resources");
  t.notOk(kustomization.secretGenerator, "no secretGenerator");
  t.notOk(resources.includes("secret.example.yaml"), "the example Secret is not applied");
  for (const cm of ofKind("ConfigMap")) {
    for (const key of Object.keys(objAt(cm, "data"))) t.notOk(SECRET_ENV.includes(key), `ConfigMap holds no ${key}`);
  }
  const required = { gateway: ["GATEWAY_API_KEYS", "DATABASE_URL"], sender: ["WECHAT_APP_SECRET"], projector: ["DATABASE_URL"] } as Record<string, string[]>;
  for (const name of SERVICES) {
    const c = containerOf(named("Deployment", name));
    for (const e of envList(c).filter((e) => SECRET_ENV.includes(String(e.name)))) {
      t.notOk("value" in e, `${name}: ${String(e.name)} has no literal value`);
      t.ok(get(e, "valueFrom", "secretKeyRef", "name"), `${name}: ${String(e.name)} from a secretKeyRef`);
    }
    for (const v of required[name] ?? []) {
      const e = envList(c).find((e) => e.name === v);
      t.ok(get(e, "valueFrom", "secretKeyRef", "key"), `${name}: ${v} comes from a Secret`);
      t.not(get(e, "valueFrom", "secretKeyRef", "optional"), true, `${name}: ${v} is required (the pod fails fast without it)`);
    }
  }
  const example = loadYamlDocuments(at("deploy", "k8s", "secret.example.yaml"));
  t.equal(example[0]?.kind, "Secret", "secret.example.yaml documents the Secret");
  const keys = new Set(Object.keys(objAt(example[0], "stringData")));
  for (const name of SERVICES) {
    for (const e of envList(containerOf(named("Deployment", name)))) {
      const ref = get(e, "valueFrom", "secretKeyRef");
      if (!ref) continue;
      t.equal(get(ref, "name"), get(example[0], "metadata", "name"), `${name}: ${String(e.name)} uses the documented Secret`);
      t.ok(keys.has(String(get(ref, "key"))), `${name}: key ${String(get(ref, "key"))} is documented in secret.example.yaml`);
    }
  }
});

t.test("k8s - the KEDA ScaledObject scales the sender Deployment on the sender-wechat consumer lag", async (t) => {
  const so = ofKind("ScaledObject")[0];
  const target = objAt(so, "spec", "scaleTargetRef");
  t.equal(target.name, get(named("Deployment", "sender"), "metadata", "name"), "scaleTargetRef names the sender Deployment");
  t.equal(target.kind ?? "Deployment", "Deployment");
  const triggers = listAt(so, "spec", "triggers");
  t.equal(triggers.length, 1, "one trigger");
  t.equal(get(triggers[0], "type"), "nats-jetstream");
  const meta = objAt(triggers[0], "metadata");
  t.equal(meta.stream, Streams.sends, `stream ${Streams.sends}`);
  t.equal(meta.consumer, Consumers.sender("wechat"), `consumer ${Consumers.sender("wechat")}`);
  t.equal(meta.account, "$G", "the global account");
  t.match(String(meta.natsServerMonitoringEndpoint), /^[a-z0-9.-]+:8222$/, "monitoring endpoint host:8222");
  for (const k of ["lagThreshold", "activationLagThreshold"]) {
    t.equal(typeof meta[k], "string", `${k} is a string (KEDA metadata values are strings)`);
    t.ok(Number(meta[k]) >= 0 && Number.isInteger(Number(meta[k])), `${k} is an integer`);
  }
  const min = Number(get(so, "spec", "minReplicaCount"));
  const max = Number(get(so, "spec", "maxReplicaCount"));
  t.ok(min >= 1 && max > min, `replicas ${min}..${max}`);
  t.ok(Number(get(so, "spec", "cooldownPeriod")) > 0, "cooldownPeriod set");
  t.notOk(get(named("Deployment", "sender"), "spec", "replicas"), "the sender Deployment leaves replicas to KEDA's HPA");
});

t.test("k8s - a PodDisruptionBudget covers the senders", async (t) => {
  const senderLabels = objAt(named("Deployment", "sender"), "spec", "template", "metadata", "labels");
  const pdb = ofKind("PodDisruptionBudget").find((p) => matches(objAt(p, "spec", "selector", "matchLabels"), senderLabels));
  t.ok(pdb, "a PDB selects the sender pods");
  t.ok(get(pdb, "spec", "maxUnavailable") !== undefined || get(pdb, "spec", "minAvailable") !== undefined, "it bounds disruptions");
});

t.test("k8s - pods carry Prometheus scrape annotations for their metrics port", async (t) => {
  for (const name of SERVICES) {
    const d = named("Deployment", name);
    const ann = objAt(d, "spec", "template", "metadata", "annotations");
    t.equal(ann["prometheus.io/scrape"], "true", `${name}: scrape`);
    t.equal(ann["prometheus.io/path"], "/metrics", `${name}: /metrics`);
    const port = name === "gateway" ? GATEWAY_PORT : METRICS_PORT;
    t.equal(ann["prometheus.io/port"], String(port), `${name}: port ${port}`);
  }
});

const kubectl = run("kubectl", ["version", "--client"], { timeoutMs: 15_000 }).ok;
t.test("k8s - kustomize renders the manifests", { skip: kubectl ? false : "kubectl not available: the files are checked by parsing" }, async (t) => {
  const r = run("kubectl", ["kustomize", K8S]);
  t.ok(r.ok, `kubectl kustomize: ${r.stderr}`);
  const rendered = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj);
  t.equal(rendered.length, docs.length, "every document rendered");
  t.equal(rendered.filter((d) => d.kind === "Secret").length, 0, "no Secret rendered");
  for (const d of rendered.filter((d) => d.kind !== "Namespace")) {
    t.equal(get(d, "metadata", "namespace"), kustomization.namespace, `${String(d.kind)}/${String(get(d, "metadata", "name"))} in ${String(kustomization.namespace)}`);
  }
  for (const d of rendered.filter((d) => d.kind === "Deployment")) {
    const image = String(get(containerOf(d), "image"));
    t.match(image, /^[^:]+\/notify-orchestrator:.+/, `${String(get(d, "metadata", "name"))}: image ${image}`);
    t.ok(
      matches(objAt(d, "spec", "selector", "matchLabels"), objAt(d, "spec", "template", "metadata", "labels")),
      `${String(get(d, "metadata", "name"))}: selector still matches after the common labels`,
    );
  }
});
