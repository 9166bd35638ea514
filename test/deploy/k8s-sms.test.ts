// The SMS overlay (deploy/k8s/sms) and the secrets every Deployment is given, checked
// without a cluster: the overlay renders the base plus an SMS sender that validates
// against the Kubernetes and KEDA schemas; each Deployment's environment (ConfigMap, env,
// Secret keys) passes that service's own configuration check; and every secret a service
// reads is wired from the Secret somewhere, or named here as not deployed, with why.
import t from "tap";
import { Consumers, Streams } from "@notify/contracts";
import { DRAIN_TIMEOUT_MS } from "@notify/runtime";
import { GatewayConfigSchema, loadGatewayConfig } from "@notify/gateway";
import { DispatcherConfigSchema, loadDispatcherConfig } from "@notify/dispatcher";
import { SenderConfigSchema, loadSenderConfig } from "@notify/sender";
import { DlqMonitorConfigSchema, loadDlqMonitorConfig } from "@notify/dlq-monitor";
import { ProjectorConfigSchema, loadProjectorConfig } from "@notify/projector";
import { JETSTREAM_OPTIONAL, JETSTREAM_REQUIRED, MODELS, containerOf, named, ofKind, renderKustomization } from "./kustomize.js";
import { at, get, isObj, listAt, loadYaml, loadYamlDocuments, objAt, type Obj } from "./support.js";

const base = renderKustomization(at("deploy", "k8s"));
const sms = renderKustomization(at("deploy", "k8s", "sms"));
const example = loadYamlDocuments(at("deploy", "k8s", "secret.example.yaml"))[0]!;

/** Each Deployment's service, by the main.js it runs. */
const SERVICE_OF: Record<string, { schema: { properties: Record<string, unknown> }; load: (env: NodeJS.ProcessEnv) => unknown }> = {
  "services/gateway/dist/main.js": { schema: GatewayConfigSchema, load: loadGatewayConfig },
  "services/dispatcher/dist/main.js": { schema: DispatcherConfigSchema, load: loadDispatcherConfig },
  "services/sender/dist/main.js": { schema: SenderConfigSchema, load: loadSenderConfig },
  "services/dlq-monitor/dist/main.js": { schema: DlqMonitorConfigSchema, load: loadDlqMonitorConfig },
  "services/projector/dist/main.js": { schema: ProjectorConfigSchema, load: loadProjectorConfig },
};
const mainOf = (d: Obj) => String(listAt(containerOf(d), "args").find((a) => String(a).endsWith("main.js")));

/** A value of the right shape for each key of the Secret, as an operator would fill it in. */
const SECRET_VALUES: Record<string, string> = {
  "gateway-api-keys": "k3y-0123456789abcdef0123456789abcdef",
  "wechat-app-secret": "0123456789abcdef0123456789abcdef",
  "database-url": "postgres://notify:pw@postgres.example:5432/sendlog",
  "alert-webhook-url": "https://hooks.example.com/notify",
  "nats-user": "notify",
  "nats-pass": "nats-password",
  "wechat-callback-token": "Token0123",
  "wechat-encoding-aes-key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
  "tencent-sms-callback-token": "0123456789abcdef0123456789abcdef",
  "tencent-secret-id": "AKIDexample0123456789",
  "tencent-secret-key": "exampleSecretKey0123456789",
};

/**
 * Secrets a service can read that these manifests do not wire, and why. Everything else
 * whose name says secret must come from a secretKeyRef in some Deployment running it.
 */
const NOT_DEPLOYED: Record<string, string> = {
  NATS_TOKEN: "the NATS chart values use user/password (NATS_USER/NATS_PASS) when auth is on",
  NATS_CREDS: "a credentials file needs a mounted volume: an overlay for operator-mode NATS",
  NATS_NKEY_SEED: "as NATS_CREDS",
  NATS_TLS_KEY: "client TLS needs mounted certificates: an overlay for a TLS-only NATS",
};
const isSecretName = (name: string) => /PASS|SECRET|TOKEN|KEYS?$|SEED|CREDS|AES/.test(name) || ["DATABASE_URL", "ALERT_WEBHOOK_URL"].includes(name);

/** The environment a pod of `d` starts with: the ConfigMap, then env (Secret keys filled in). */
function podEnv(objects: Obj[], d: Obj): Record<string, string> {
  const c = containerOf(d);
  const env: Record<string, string> = {};
  for (const from of listAt(c, "envFrom")) {
    const cm = named(objects, "ConfigMap", String(get(from, "configMapRef", "name")));
    Object.assign(env, objAt(cm, "data"));
  }
  for (const e of listAt(c, "env").filter(isObj)) {
    if ("value" in e) env[String(e.name)] = String(e.value);
    const key = get(e, "valueFrom", "secretKeyRef", "key");
    if (key !== undefined) env[String(e.name)] = SECRET_VALUES[String(key)] ?? "";
  }
  return env;
}

t.test("k8s sms - the overlay renders the base plus the SMS sender, every object schema-valid", async (t) => {
  const added = sms.filter((o) => !base.some((b) => b.kind === o.kind && get(b, "metadata", "name") === get(o, "metadata", "name")));
  t.same(added.map((o) => `${String(o.kind)}/${String(get(o, "metadata", "name"))}`).sort(), ["Deployment/sender-sms", "PodDisruptionBudget/sender-sms", "ScaledObject/sender-sms"]);
  t.equal(sms.length, base.length + 3, "nothing of the base dropped");
  for (const d of sms) {
    const id = `${String(d.apiVersion)}/${String(d.kind)}`;
    t.doesNotThrow(() => MODELS[id]!(d).validate(), `${id} ${String(get(d, "metadata", "name"))} validates`);
    if (d.kind !== "Namespace") t.equal(get(d, "metadata", "namespace"), "notify", `${String(get(d, "metadata", "name"))} in notify`);
  }
  const images = new Set(ofKind(sms, "Deployment").map((d) => String(get(containerOf(d), "image"))));
  t.equal(images.size, 1, `one image for every Deployment (${[...images].join(", ")})`);
  const k = (dir: string[]) => loadYaml(...dir, "kustomization.yaml");
  for (const field of ["namespace", "labels", "images"]) t.same(k(["deploy", "k8s", "sms"])[field], k(["deploy", "k8s"])[field], `the overlay's ${field} are the base's`);
  const cm = objAt(named(sms, "ConfigMap", "notify-config"), "data");
  t.equal(cm.CHANNELS, "wechat,sms", "CHANNELS turns SMS on for every service");
  t.equal(cm.NATS_URL, objAt(named(base, "ConfigMap", "notify-config"), "data").NATS_URL, "the base's settings kept");
  t.notOk(objAt(named(base, "ConfigMap", "notify-config"), "data").CHANNELS, "the base leaves SMS off");
});

t.test("k8s sms - every Deployment's environment passes its service's own configuration check", async (t) => {
  for (const [label, objects] of [["base", base], ["sms", sms]] as const) {
    for (const d of ofKind(objects, "Deployment")) {
      const name = String(get(d, "metadata", "name"));
      const svc = SERVICE_OF[mainOf(d)];
      t.ok(svc, `${label}/${name} runs a known service (${mainOf(d)})`);
      if (!svc) continue;
      let loaded: Record<string, unknown> = {};
      t.doesNotThrow(() => (loaded = svc.load(podEnv(objects, d)) as Record<string, unknown>), `${label}/${name}: configuration accepted`);
      if (name === "sender-sms") t.equal(loaded.SENDER_CHANNEL, "sms", "sender-sms sends on the SMS channel");
      if (name === "sender") t.equal(loaded.SENDER_CHANNEL, "wechat", "sender sends on WeChat");
    }
  }
  // The check has teeth: the SMS sender without its Tencent secret is refused.
  const d = named(sms, "Deployment", "sender-sms")!;
  const env = podEnv(sms, d);
  delete env.TENCENT_SECRET_KEY;
  t.throws(() => loadSenderConfig(env), /TENCENT_SECRET_KEY/, "missing TENCENT_SECRET_KEY is refused by name");
});

t.test("k8s sms - every secret a service reads comes from the Secret, or is named as not deployed", async (t) => {
  const keys = new Set(Object.keys(objAt(example, "stringData")));
  for (const [main, svc] of Object.entries(SERVICE_OF)) {
    const running = ofKind(sms, "Deployment").filter((d) => mainOf(d) === main);
    t.ok(running.length > 0, `${main} is deployed`);
    for (const name of Object.keys(svc.schema.properties).filter(isSecretName)) {
      if (NOT_DEPLOYED[name]) continue;
      const refs = running.map((d) => listAt(containerOf(d), "env").find((e) => get(e, "name") === name)).filter(Boolean);
      t.ok(refs.length > 0, `${main}: ${name} is set in a Deployment`);
      for (const e of refs) {
        t.notOk(isObj(e) && "value" in e, `${main}: ${name} is not a literal`);
        t.ok(keys.has(String(get(e, "valueFrom", "secretKeyRef", "key"))), `${main}: ${name} from a key documented in secret.example.yaml`);
      }
    }
  }
  for (const [name, why] of Object.entries(NOT_DEPLOYED)) t.ok(why.length > 10, `${name} not deployed: ${why}`);
});

t.test("k8s sms - the SMS sender scales on its own consumer and drains like the WeChat senders", async (t) => {
  const so = named(sms, "ScaledObject", "sender-sms");
  const trigger = objAt(listAt(so, "spec", "triggers")[0]);
  const meta = objAt(trigger, "metadata");
  t.equal(trigger.type, "nats-jetstream");
  for (const k of JETSTREAM_REQUIRED) t.ok(typeof meta[k] === "string" && meta[k] !== "", `metadata.${k} set`);
  for (const k of Object.keys(meta)) t.ok([...JETSTREAM_REQUIRED, ...JETSTREAM_OPTIONAL].includes(k), `metadata.${k} is a field of the scaler`);
  t.equal(meta.stream, Streams.sends);
  t.equal(meta.consumer, Consumers.sender("sms"), "the SMS senders' consumer");
  t.equal(get(so, "spec", "scaleTargetRef", "name"), "sender-sms");
  // The sender creates its consumer: with no replica there is no lag for KEDA to read.
  t.ok(Number(get(so, "spec", "minReplicaCount")) >= 1, "never scaled to zero");
  const d = named(sms, "Deployment", "sender-sms")!;
  t.notOk(get(d, "spec", "replicas"), "replicas left to KEDA's HPA");
  t.ok(Number(get(d, "spec", "template", "spec", "terminationGracePeriodSeconds")) > DRAIN_TIMEOUT_MS / 1000, "grace period above the drain time");
  const labels = objAt(d, "spec", "template", "metadata", "labels");
  const pdbs = ofKind(sms, "PodDisruptionBudget").filter((p) => Object.entries(objAt(p, "spec", "selector", "matchLabels")).every(([k, v]) => labels[k] === v));
  t.same(pdbs.map((p) => get(p, "metadata", "name")), ["sender-sms"], "one PDB selects the SMS senders, and only it");
  const wechatLabels = objAt(named(sms, "Deployment", "sender"), "spec", "template", "metadata", "labels");
  t.not(wechatLabels["app.kubernetes.io/name"], labels["app.kubernetes.io/name"], "the WeChat senders' selectors do not take SMS pods");
});
