import type { KV, KvEntry } from "@nats-io/kv";
import {
  decodeJson,
  encodeJson,
  languageCandidates,
  templateKey,
  type Template,
  type TemplateInput,
} from "@notify/contracts";
import { isWrongLastSequence } from "@notify/nats";
import { TemplateCache, TemplateError, Turns, checkTemplateFields, compileTemplate, normalizeTemplate, type CompiledTemplate, type FieldFinding } from "@notify/templates";
import { HttpError, badRequest, conflict, notFound, preconditionFailed } from "../errors.js";

export interface StoredTemplate {
  template: Template;
  revision: number;
}

export interface TemplateFilter {
  event?: string | undefined;
  channel?: string | undefined;
  language?: string | undefined;
  enabled?: boolean | undefined;
}

/** `If-Match` / `If-None-Match` as the store understands them. */
export interface WriteCondition {
  /** The revision the client edited, or "*" (the template must exist). */
  ifMatch?: number | "*" | undefined;
  /** Create only. */
  ifNoneMatch?: boolean | undefined;
}

export interface TemplateHistoryItem {
  revision: number;
  operation: "PUT" | "DEL" | "PURGE";
  at: string;
  template?: Template;
}

const COMPILED_CACHE_SIZE = 256;

/**
 * Templates in the `notification_templates` KV bucket, keyed `<event>.<channel>.<language>`.
 * Every write compiles the template first with the dispatcher's own code
 * (@notify/templates), so nothing the dispatcher cannot compile is ever stored.
 */
export class TemplateStore {
  /** Compiled per key and revision: a preview compiles each revision once. */
  private readonly compiled = new Map<string, CompiledTemplate>();

  /** Compiles take turns on the event loop (a hostile template costs tens of ms). */
  private readonly turns = new Turns();

  /** Memoised list answers, valid while the cache's version is unchanged. */
  private listed: { version: number; byFilter: Map<string, StoredTemplate[]> } = { version: -1, byFilter: new Map() };

  /**
   * `cache`: the watched in-memory view of the bucket that lists and previews read (no KV
   * round trip per request); every write here waits until the cache has seen it, so an
   * admin reads back what they wrote. Without it, every read goes to KV.
   */
  constructor(
    readonly kv: KV,
    private readonly cache: TemplateCache | null = null,
  ) {}

  /**
   * Normalises and compiles, or throws 400 naming the part that does not compile or the
   * literal keyword value that breaks WeChat's rule for its type. Returns the warnings
   * (`first`/`remark` keys, colours: stored, never sent).
   */
  prepare(input: TemplateInput): { template: Template; warnings: FieldFinding[] } {
    const template = normalizeTemplate(input);
    try {
      compileTemplate(template);
    } catch (err) {
      if (err instanceof TemplateError) throw badRequest(err.message, { field: err.field, ...err.details });
      throw err;
    }
    const fields = checkTemplateFields(template.data);
    const bad = fields.errors[0];
    if (bad) throw badRequest(`data.${bad.message}`, { field: `data.${bad.field}`, rule: bad.rule, violations: fields.errors });
    return { template, warnings: fields.warnings };
  }

  /** `by`: who writes it (the gateway's id of the API key), kept with the revision. */
  async upsert(input: TemplateInput, cond: WriteCondition = {}, by?: string): Promise<StoredTemplate & { created: boolean; warnings: FieldFinding[] }> {
    const prepared = await this.turns.run(() => this.prepare(input));
    const template = by ? { ...prepared.template, updated_by: by } : prepared.template;
    const saved = await this.write(template, cond);
    await this.cache?.seen(keyOf(template), saved.revision);
    return { ...saved, warnings: prepared.warnings };
  }

  private async write(template: Template, cond: WriteCondition): Promise<StoredTemplate & { created: boolean }> {
    const key = templateKey(template.event, template.channel, template.language);
    const value = encodeJson(template);
    try {
      if (cond.ifNoneMatch) {
        return { template, revision: await this.kv.create(key, value), created: true };
      }
      if (cond.ifMatch === "*") {
        const current = await this.get(key);
        if (!current) throw preconditionFailed(`template ${key} does not exist (If-Match: *)`);
        return { template, revision: await this.kv.update(key, value, current.revision), created: false };
      }
      if (cond.ifMatch !== undefined) {
        return { template, revision: await this.kv.update(key, value, cond.ifMatch), created: false };
      }
      try {
        return { template, revision: await this.kv.create(key, value), created: true };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        return { template, revision: await this.kv.put(key, value), created: false };
      }
    } catch (err) {
      if (isWrongLastSequence(err)) {
        throw preconditionFailed(
          cond.ifNoneMatch ? `template ${key} already exists (If-None-Match: *)` : `template ${key} changed since revision ${String(cond.ifMatch)}: reload it and retry`,
          { key },
        );
      }
      throw err;
    }
  }

  /**
   * Writes the content of an earlier revision as a new revision (the history keeps both),
   * recompiled with today's rules. 404: no such template or revision in the history;
   * 409: that revision is a delete marker or no longer compiles. Without If-Match the
   * write is conditional on the revision read here, so a concurrent edit is a 412, never lost.
   */
  async rollback(key: string, target: number, cond: WriteCondition = {}, by?: string): Promise<StoredTemplate & { warnings: FieldFinding[] }> {
    const items = await this.history(key);
    const last = items.at(-1);
    if (!last) throw notFound(`no template ${key}`);
    const item = items.find((i) => i.revision === target);
    if (!item) {
      throw notFound(`template ${key} has no revision ${target} in its history (kept: ${items.map((i) => i.revision).join(", ")})`);
    }
    if (item.operation !== "PUT" || !item.template) {
      throw conflict(`revision ${target} of ${key} is a ${item.operation === "DEL" ? "delete" : "purge"} marker, not a template: pick a PUT revision`, { revision: target, operation: item.operation });
    }
    const { updated_at: _at, updated_by: _by, rolled_back_to: _to, ...content } = item.template;
    let prepared: { template: Template; warnings: FieldFinding[] };
    try {
      prepared = await this.turns.run(() => this.prepare(content as TemplateInput));
    } catch (err) {
      // Stored before a rule existed: restoring it would store what the API refuses today.
      if (err instanceof HttpError && err.statusCode === 400) {
        throw conflict(`revision ${target} of ${key} does not pass today's checks: ${err.message}`, { revision: target, ...(err.details as object) });
      }
      throw err;
    }
    const template: Template = { ...prepared.template, ...(by ? { updated_by: by } : {}), rolled_back_to: target };
    if (cond.ifMatch === "*" && last.operation !== "PUT") throw preconditionFailed(`template ${key} does not exist (If-Match: *)`);
    const expected = typeof cond.ifMatch === "number" ? cond.ifMatch : last.revision;
    let revision: number;
    try {
      revision = await this.kv.update(key, encodeJson(template), expected);
    } catch (err) {
      if (isWrongLastSequence(err)) throw preconditionFailed(`template ${key} changed since revision ${expected}: reload it and retry`, { key });
      throw err;
    }
    await this.cache?.seen(key, revision);
    return { template, revision, warnings: prepared.warnings };
  }

  async get(key: string): Promise<StoredTemplate | null> {
    const e = await this.kv.get(key);
    return e ? toStored(e) : null;
  }

  async list(filter: TemplateFilter = {}): Promise<StoredTemplate[]> {
    if (this.cache) return this.listCached(this.cache, filter);
    // event holds a dot (order.paid), so "*.*" stands for any event.
    const pattern = templateKey(filter.event ?? "*.*", filter.channel ?? "*", filter.language ?? "*");
    const keys: string[] = [];
    for await (const k of await this.kv.keys(pattern)) keys.push(k);
    const entries = await Promise.all(keys.map((k) => this.get(k)));
    return entries
      .filter((e): e is StoredTemplate => e !== null)
      .filter((e) => filter.enabled === undefined || e.template.enabled === filter.enabled)
      .sort((a, b) => keyOf(a.template).localeCompare(keyOf(b.template)));
  }

  private listCached(cache: TemplateCache, filter: TemplateFilter): StoredTemplate[] {
    if (this.listed.version !== cache.version) this.listed = { version: cache.version, byFilter: new Map() };
    const id = JSON.stringify([filter.event, filter.channel, filter.language, filter.enabled]);
    let out = this.listed.byFilter.get(id);
    if (!out) {
      out = cache
        .storedTemplates()
        .filter(({ template: t }) => (filter.event === undefined || t.event === filter.event) && (filter.channel === undefined || t.channel === filter.channel))
        .filter(({ template: t }) => (filter.language === undefined || t.language === filter.language) && (filter.enabled === undefined || t.enabled === filter.enabled))
        .map(({ template, revision }) => ({ template, revision }))
        .sort((a, b) => keyOf(a.template).localeCompare(keyOf(b.template)));
      // Bounded: filters are enums and a language tag, but a client can vary the tag.
      if (this.listed.byFilter.size < 256) this.listed.byFilter.set(id, out);
    }
    return out;
  }

  /** Deletes (a KV delete marker: the history stays as the audit trail). */
  async remove(key: string, cond: WriteCondition = {}): Promise<void> {
    const current = await this.get(key);
    if (!current) {
      if (cond.ifMatch !== undefined) throw preconditionFailed(`template ${key} does not exist`);
      throw notFound(`no template ${key}`);
    }
    const expected = typeof cond.ifMatch === "number" ? cond.ifMatch : current.revision;
    try {
      await this.kv.delete(key, { previousSeq: expected });
      await this.cache?.seen(key, expected + 1);
    } catch (err) {
      if (isWrongLastSequence(err)) throw preconditionFailed(`template ${key} changed since revision ${expected}: reload it and retry`, { key });
      throw err;
    }
  }

  async history(key: string): Promise<TemplateHistoryItem[]> {
    const out: TemplateHistoryItem[] = [];
    for await (const e of await this.kv.history({ key })) {
      const item: TemplateHistoryItem = { revision: e.revision, operation: e.operation, at: e.created.toISOString() };
      if (e.operation === "PUT") item.template = decodeJson<Template>(e.value);
      out.push(item);
    }
    return out;
  }

  /**
   * The template the dispatcher would pick for this event, channel and locale
   * (exact → language → zh-CN), from the cache (writes wait until it has them) or KV.
   */
  async resolve(event: string, channel: string, locale: string | null | undefined): Promise<CompiledTemplate | null> {
    if (this.cache) {
      for (const language of languageCandidates(locale)) {
        const stored = this.cache.storedTemplate(templateKey(event, channel, language));
        if (!stored) continue;
        const compiled = this.cache.get(event, channel, language);
        // A stored value that does not compile is not in the compiled view: compile() says why (409).
        return compiled && compiled.revision === stored.revision ? compiled : this.turns.run(() => this.compile(stored, templateKey(event, channel, language)));
      }
      return null;
    }
    for (const language of languageCandidates(locale)) {
      const stored = await this.get(templateKey(event, channel, language));
      if (stored) return this.turns.run(() => this.compile(stored, templateKey(event, channel, language)));
    }
    return null;
  }

  /** `key`: where it is stored (a value written around the API may not even be an object). */
  private compile(stored: StoredTemplate, key: string): CompiledTemplate {
    const id = `${key}@${stored.revision}`;
    let c = this.compiled.get(id);
    if (!c) {
      try {
        c = compileTemplate(stored.template, stored.revision);
      } catch (err) {
        // Only a value written around this API gets here: say which one, keep the rest of the API up.
        if (err instanceof TemplateError) throw conflict(`stored template ${id} does not compile: ${err.message}; fix it with POST /notifications/templates`, { field: err.field, ...err.details });
        throw err;
      }
      if (this.compiled.size >= COMPILED_CACHE_SIZE) this.compiled.delete(this.compiled.keys().next().value!);
      this.compiled.set(id, c);
    }
    return c;
  }
}

function toStored(e: KvEntry): StoredTemplate | null {
  if (e.operation !== "PUT") return null;
  return { template: decodeJson<Template>(e.value), revision: e.revision };
}

function keyOf(t: Template): string {
  return templateKey(t.event, t.channel, t.language);
}

/** `"12"`, `W/"12"`, `12` or `*`; anything else is a 400. */
export function parseRevisionHeader(name: string, value: string | undefined): number | "*" | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === "*") return "*";
  const m = /^(?:W\/)?"?(\d{1,15})"?$/.exec(v);
  if (!m) throw badRequest(`${name} must be an ETag this API returned (e.g. "12") or *`, { header: name });
  return Number(m[1]);
}
