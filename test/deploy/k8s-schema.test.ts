// The Kubernetes manifests validated without a cluster: every object, as the kustomization
// renders it (namespace, common labels, image), against the OpenAPI schema of its kind —
// Kubernetes' own from `kubernetes-models` 4.5.1 (the Kubernetes 1.30 API), KEDA's
// ScaledObject CRD from `@kubernetes-models/keda` 0.4.2 (KEDA 2.9-2.11: `useCachedMetrics`,
// no `scalingModifiers`); the 5.x / 2.x releases need Node 22 — then
// what a schema cannot say: probes, resources, disruption budgets, the grace period against
// the services' drain time, and the nats-jetstream trigger's fields as KEDA documents them.
import t from "tap";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { Consumers, Streams } from "@notify/contracts";
import { DRAIN_TIMEOUT_MS } from "@notify/runtime";
import { JETSTREAM_OPTIONAL, JETSTREAM_REQUIRED, MODELS, containerOf, named, ofKind as ofKindIn, renderKustomization } from "./kustomize.js";
import { SERVICES, at, get, listAt, objAt, type Obj } from "./support.js";

const rendered = renderKustomization(at("deploy", "k8s"));
const ofKind = (kind: string) => ofKindIn(rendered, kind);
const deployment = (name: string) => named(rendered, "Deployment", name);
const container = containerOf;
const matches = (selector: Obj, labels: Obj) => Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

t.test("k8s schema - every rendered object is valid for the schema of its apiVersion and kind", async (t) => {
  t.ok(rendered.length >= 11, `${rendered.length} objects rendered`);
  for (const d of rendered) {
    const id = `${String(d.apiVersion)}/${String(d.kind)}`;
    const model = MODELS[id];
    t.ok(model, `${id} ${String(get(d, "metadata", "name"))} has a schema`);
    if (model) t.doesNotThrow(() => model(d).validate(), `${id} ${String(get(d, "metadata", "name"))} validates`);
  }
});

t.test("k8s schema - the validators refuse what a cluster would refuse", async (t) => {
  const d = structuredClone(deployment("sender")!);
  (listAt(d, "spec", "template", "spec", "containers")[0] as Obj).ports = [{ containerPort: "9464" }];
  t.throws(() => new Deployment(d as never).validate(), /containerPort/, "a string containerPort");
  const noSelector = structuredClone(deployment("gateway")!);
  delete objAt(noSelector, "spec").selector;
  t.throws(() => new Deployment(noSelector as never).validate(), /selector/, "a Deployment without a selector");
  const so = structuredClone(ofKind("ScaledObject")[0]!);
  objAt(listAt(so, "spec", "triggers")[0], "metadata").lagThreshold = 10;
  t.throws(() => new ScaledObject(so as never).validate(), /lagThreshold/, "a number in trigger metadata (KEDA wants strings)");
  const noTarget = structuredClone(ofKind("ScaledObject")[0]!);
  delete objAt(noTarget, "spec").scaleTargetRef;
  t.throws(() => new ScaledObject(noTarget as never).validate(), /scaleTargetRef/, "a ScaledObject without scaleTargetRef");
});

t.test("k8s schema - probes, resources and a grace period above the drain time", async (t) => {
  const drainS = DRAIN_TIMEOUT_MS / 1000;
  for (const name of SERVICES) {
    const d = deployment(name);
    t.ok(d, `Deployment ${name}`);
    const c = container(d);
    for (const probe of ["startupProbe", "livenessProbe", "readinessProbe"]) {
      t.ok(get(c, probe, "httpGet", "path"), `${name}: ${probe} over HTTP`);
    }
    // A liveness probe that fires before start-up ends kills a slow-starting pod in a loop.
    const startupS = Number(get(c, "startupProbe", "periodSeconds") ?? 10) * Number(get(c, "startupProbe", "failureThreshold") ?? 3);
    t.ok(startupS >= 30, `${name}: start-up allowed ${startupS}s before liveness counts`);
    for (const r of ["cpu", "memory"]) t.ok(get(c, "resources", "requests", r), `${name}: requests.${r}`);
    t.ok(get(c, "resources", "limits", "memory"), `${name}: limits.memory`);
    const preStop = listAt(c, "lifecycle", "preStop", "exec", "command").map(String);
    const sleepS = preStop[0] === "sleep" ? Number(preStop[1]) : 0;
    const grace = Number(get(d, "spec", "template", "spec", "terminationGracePeriodSeconds"));
    t.ok(grace > sleepS + drainS, `${name}: terminationGracePeriodSeconds ${grace} > preStop ${sleepS}s + drain ${drainS}s`);
  }
});

t.test("k8s schema - disruption budgets cover every Deployment that can lose a pod safely", async (t) => {
  const pdbs = ofKind("PodDisruptionBudget");
  const so = ofKind("ScaledObject")[0];
  for (const pdb of pdbs) {
    const selected = ofKind("Deployment").filter((d) => matches(objAt(pdb, "spec", "selector", "matchLabels"), objAt(d, "spec", "template", "metadata", "labels")));
    t.equal(selected.length, 1, `PDB ${String(get(pdb, "metadata", "name"))} selects exactly one Deployment`);
    const d = selected[0];
    const min = get(pdb, "spec", "minAvailable");
    if (min !== undefined && d) {
      // A budget that keeps every replica up blocks node drains forever.
      const replicas = Number(get(d, "spec", "replicas") ?? get(so, "spec", "minReplicaCount"));
      t.ok(Number(min) < replicas, `${String(get(d, "metadata", "name"))}: minAvailable ${String(min)} < replicas ${replicas}`);
    }
  }
  for (const name of ["gateway", "sender"]) {
    t.ok(
      pdbs.some((p) => matches(objAt(p, "spec", "selector", "matchLabels"), objAt(deployment(name), "spec", "template", "metadata", "labels"))),
      `${name} (several replicas) has a PDB`,
    );
  }
  t.equal(get(deployment("projector"), "spec", "replicas"), 1, "projector: one replica per database");
  t.equal(get(deployment("projector"), "spec", "strategy", "type"), "Recreate", "projector: never two at once during a rollout");
});

t.test("k8s schema - the KEDA nats-jetstream trigger has the scaler's fields and nothing else", async (t) => {
  const so = ofKind("ScaledObject")[0];
  const trigger = objAt(listAt(so, "spec", "triggers")[0]);
  t.equal(trigger.type, "nats-jetstream");
  const meta = objAt(trigger, "metadata");
  for (const k of JETSTREAM_REQUIRED) t.ok(typeof meta[k] === "string" && meta[k] !== "", `metadata.${k} set`);
  for (const k of Object.keys(meta)) t.ok([...JETSTREAM_REQUIRED, ...JETSTREAM_OPTIONAL].includes(k), `metadata.${k} is a field of the scaler`);
  t.match(String(meta.natsServerMonitoringEndpoint), /^[a-z0-9.-]+:8222$/, "host:port of the monitoring endpoint, no scheme");
  t.equal(meta.stream, Streams.sends);
  t.equal(meta.consumer, Consumers.sender("wechat"));
  t.ok(Number.isInteger(Number(meta.lagThreshold)) && Number(meta.lagThreshold) > 0, "lagThreshold a positive integer");
  if (meta.useHttps !== undefined) t.match(String(meta.useHttps), /^(true|false)$/, "useHttps true or false");
  t.equal(get(so, "spec", "scaleTargetRef", "name"), get(deployment("sender"), "metadata", "name"), "scales the sender Deployment");
  t.equal(get(so, "metadata", "namespace"), get(deployment("sender"), "metadata", "namespace"), "in the sender's namespace");
});
