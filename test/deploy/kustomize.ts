/**
 * What `kubectl kustomize <dir>` produces from deploy/k8s (kubectl is not installed here),
 * for the features these manifests use: resources (files, and directories holding a
 * kustomization: the SMS overlay builds on the base), strategic-merge patches of whole
 * objects, namespace, common labels and the image override. Plus the schema of every kind
 * they contain, from `kubernetes-models` and `@kubernetes-models/keda`.
 */
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Service } from "kubernetes-models/v1/Service";
import { Deployment } from "kubernetes-models/apps/v1/Deployment";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { ROOT, get, isObj, listAt, loadYaml, loadYamlDocuments, objAt, type Obj } from "./support.js";

export interface Validating {
  validate(): void;
}
export const MODELS: Record<string, (doc: Obj) => Validating> = {
  "v1/Namespace": (d) => new Namespace(d as never),
  "v1/ConfigMap": (d) => new ConfigMap(d as never),
  "v1/Service": (d) => new Service(d as never),
  "apps/v1/Deployment": (d) => new Deployment(d as never),
  "policy/v1/PodDisruptionBudget": (d) => new PodDisruptionBudget(d as never),
  "keda.sh/v1alpha1/ScaledObject": (d) => new ScaledObject(d as never),
};

/** The nats-jetstream scaler's metadata keys (KEDA docs, scalers/nats-jetstream); the rest are unknown to it. */
export const JETSTREAM_REQUIRED = ["natsServerMonitoringEndpoint", "account", "stream", "consumer", "lagThreshold"];
export const JETSTREAM_OPTIONAL = ["activationLagThreshold", "useHttps"];

const sameObject = (a: Obj, b: Obj) => a.kind === b.kind && get(a, "metadata", "name") === get(b, "metadata", "name");

/** Strategic merge as kustomize applies it to maps (lists here are replaced whole). */
function merge(into: Obj, patch: Obj): Obj {
  const out: Obj = { ...into };
  for (const [k, v] of Object.entries(patch)) out[k] = isObj(v) && isObj(out[k]) ? merge(out[k] as Obj, v) : v;
  return out;
}

/** The objects `kubectl kustomize dir` renders (dir: an absolute path). */
export function renderKustomization(dir: string): Obj[] {
  const k = loadYaml(path.relative(ROOT, dir), "kustomization.yaml");
  let objects: Obj[] = listAt(k, "resources").flatMap((res) => {
    const p = path.resolve(dir, String(res));
    if (!existsSync(p)) throw new Error(`${dir}: resource ${String(res)} does not exist`);
    return statSync(p).isDirectory() ? renderKustomization(p) : loadYamlDocuments(p).map((d) => structuredClone(d));
  });
  for (const entry of listAt(k, "patches")) {
    for (const patch of loadYamlDocuments(path.resolve(dir, String(get(entry, "path"))))) {
      const hits = objects.filter((o) => sameObject(o, patch)).length;
      if (hits !== 1) throw new Error(`${dir}: patch ${String(patch.kind)}/${String(get(patch, "metadata", "name"))} matches ${hits} objects`);
      objects = objects.map((o) => (sameObject(o, patch) ? merge(o, patch) : o));
    }
  }
  const labels = Object.assign({}, ...listAt(k, "labels").map((l) => objAt(l, "pairs"))) as Obj;
  const images = listAt(k, "images").filter(isObj);
  return objects.map((d) => {
    const meta = objAt(d, "metadata");
    if (d.kind !== "Namespace" && k.namespace) meta.namespace = k.namespace;
    meta.labels = { ...objAt(meta, "labels"), ...labels };
    d.metadata = meta;
    const pod = get(d, "spec", "template");
    if (isObj(pod)) {
      const podMeta = objAt(pod, "metadata");
      pod.metadata = { ...podMeta, labels: { ...objAt(podMeta, "labels"), ...labels } };
      for (const c of listAt(pod, "spec", "containers").filter(isObj)) {
        const img = images.find((i) => i.name === c.image);
        if (img) c.image = `${String(img.newName ?? img.name)}:${String(img.newTag)}`;
      }
    }
    return d;
  });
}

export const ofKind = (objects: Obj[], kind: string): Obj[] => objects.filter((d) => d.kind === kind);
export const named = (objects: Obj[], kind: string, name: string): Obj | undefined => ofKind(objects, kind).find((d) => get(d, "metadata", "name") === name);
export const containerOf = (d: Obj | undefined): Obj => objAt(listAt(d, "spec", "template", "spec", "containers")[0]);
