import t from "tap";
import { get, listAt, loadYaml, loadYamlDocuments, at, objAt, syncIntervalMs } from "./support.js";

const values = loadYaml("deploy", "helm", "nats-values.yaml");
const configMap = loadYamlDocuments(at("deploy", "k8s", "configmap.yaml")).find((d) => d.kind === "ConfigMap");
const scaledObject = loadYamlDocuments(at("deploy", "k8s", "sender-scaledobject.yaml")).find((d) => d.kind === "ScaledObject");

t.test("helm - NATS values enable a 3-replica JetStream cluster with file storage", async (t) => {
  t.equal(get(values, "config", "cluster", "enabled"), true, "cluster enabled");
  t.equal(get(values, "config", "cluster", "replicas"), 3, "3 replicas");
  t.equal(get(values, "config", "jetstream", "enabled"), true, "JetStream enabled");
  t.equal(get(values, "config", "jetstream", "fileStore", "enabled"), true, "file storage");
  t.match(String(get(values, "config", "jetstream", "fileStore", "pvc", "size")), /^\d+(Gi|Ti)$/, "a PVC size per node");
  t.equal(get(values, "config", "monitor", "enabled"), true, "monitoring enabled (KEDA reads /jsz)");
});

t.test("helm - sync_interval is set through the JetStream merge config", async (t) => {
  const sync = get(values, "config", "jetstream", "merge", "sync_interval");
  t.ok(sync !== undefined, "config.jetstream.merge.sync_interval");
  const ms = syncIntervalMs(String(sync));
  t.ok(ms !== undefined && ms <= 10_000, `always or a short interval (got ${String(sync)})`);
  t.match(String(get(values, "container", "image", "tag")), /^2\.(1\d|[2-9]\d)/, "nats-server 2.10+ (sync_interval needs it)");
});

t.test("helm - the manifests point at this release: NATS_URL, replicas and the KEDA monitoring port", async (t) => {
  const data = objAt(configMap, "data");
  t.equal(String(data.NATS_REPLICAS), String(get(values, "config", "cluster", "replicas")), "NATS_REPLICAS equals the cluster size");
  const url = new URL(String(data.NATS_URL));
  t.match(url.hostname, /^nats\.nats\.svc/, "NATS_URL is the chart's client Service (release nats in namespace nats)");
  t.equal(url.port, "4222");
  const trigger = listAt(scaledObject, "spec", "triggers")[0];
  const endpoint = String(get(trigger, "metadata", "natsServerMonitoringEndpoint"));
  t.equal(endpoint.split(":")[1], String(get(values, "config", "monitor", "port") ?? 8222), "KEDA uses the monitoring port");
  t.match(endpoint, /^nats-headless\.nats\.svc/, "through the headless Service, so KEDA can reach the consumer leader pod");
});
