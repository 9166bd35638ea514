import { setImmediate } from "node:timers/promises";
import { KvWatchInclude, type KV } from "@nats-io/kv";
import { decodeJson, languageCandidates, parseTemplateKey, templateKey, type Template } from "@notify/contracts";
import { compileTemplate } from "./compile.js";
import type { CompiledTemplate } from "./types.js";

/** A stored template that does not compile (written around the gateway, or before a rule). */
export interface InvalidTemplate {
  key: string;
  language: string;
  revision: number;
  error: string;
}

export interface TemplateCacheOptions {
  /** Called when a stored template does not compile (it is then held as invalid, see invalidFor). */
  onInvalid?: (key: string, err: unknown) => void;
  onChange?: (key: string, op: "PUT" | "DEL" | "PURGE") => void;
}

/**
 * All templates held in memory from a KV watch: the dispatcher never reads KV per event.
 * Each revision is compiled once when it arrives.
 */
export class TemplateCache {
  private readonly byKey = new Map<string, CompiledTemplate>();
  private readonly revisions = new Map<string, number>();
  private readonly invalid = new Map<string, InvalidTemplate>();
  /** Every stored template as decoded, compiled or not (the gateway lists them all). */
  private readonly stored = new Map<string, { template: Template; revision: number }>();
  private readonly waiters = new Set<() => void>();
  private changes = 0;
  private watcher: { stop(): void } | null = null;
  private stopped: Promise<void> | null = null;

  constructor(
    private readonly kv: KV,
    private readonly opts: TemplateCacheOptions = {},
  ) {}

  /** Starts watching; resolves once every stored template has been loaded. */
  async start(): Promise<void> {
    // Watch updates first, then load what is stored: nothing written in between is missed,
    // and apply() keeps the newest revision when both paths see the same key.
    const iter = await this.kv.watch({ key: ">", include: KvWatchInclude.UpdatesOnly });
    this.watcher = iter;
    void (async () => {
      for await (const e of iter) {
        this.apply(e.key, e.operation, e.revision, e.value);
        // One compile per loop turn: a burst of writes must not block the loop for their sum.
        await setImmediate();
      }
    })().catch((err: unknown) => this.opts.onInvalid?.("(watch)", err));
    const keys = await this.kv.keys();
    const stored: string[] = [];
    for await (const k of keys) stored.push(k);
    await Promise.all(
      stored.map(async (k) => {
        const e = await this.kv.get(k);
        if (e) this.apply(e.key, e.operation, e.revision, e.value);
      }),
    );
  }

  private apply(key: string, op: "PUT" | "DEL" | "PURGE", revision: number, value: Uint8Array): void {
    const seen = this.revisions.get(key) ?? 0;
    if (revision <= seen) return;
    this.revisions.set(key, revision);
    this.invalid.delete(key);
    this.changes++;
    for (const wake of this.waiters) wake();
    if (op !== "PUT") {
      this.byKey.delete(key);
      this.stored.delete(key);
      this.opts.onChange?.(key, op);
      return;
    }
    try {
      const template = decodeJson<Template>(value);
      this.stored.set(key, { template, revision });
      this.byKey.set(key, compileTemplate(template, revision));
    } catch (err) {
      // Written around the gateway's validation: keep serving the other templates, and
      // remember this one so its events are recorded failed rather than sent another way.
      this.byKey.delete(key);
      const language = parseTemplateKey(key)?.language ?? "";
      this.invalid.set(key, { key, language, revision, error: err instanceof Error ? err.message : String(err) });
      this.opts.onInvalid?.(key, err);
    }
    this.opts.onChange?.(key, "PUT");
  }

  /** Bumped on every change: lets readers memoise what they derive from the cache. */
  get version(): number {
    return this.changes;
  }

  /** Every stored template that decodes as JSON, compiled or not, with its revision. */
  storedTemplates(): { key: string; template: Template; revision: number }[] {
    return [...this.stored].map(([key, s]) => ({ key, ...s }));
  }

  /** The stored (decoded) template of a key, compiled or not. */
  storedTemplate(key: string): { template: Template; revision: number } | undefined {
    return this.stored.get(key);
  }

  /**
   * Resolves once the cache has seen `revision` of `key` (or a later one), false after
   * `timeoutMs`: a writer reads its own write back from the cache.
   */
  async seen(key: string, revision: number, timeoutMs = 2000): Promise<boolean> {
    if ((this.revisions.get(key) ?? 0) >= revision) return true;
    return new Promise((resolve) => {
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(ok);
      };
      const check = () => {
        if ((this.revisions.get(key) ?? 0) >= revision) done(true);
      };
      const timer = setTimeout(() => done(false), timeoutMs);
      this.waiters.add(check);
    });
  }

  get(event: string, channel: string, language: string): CompiledTemplate | undefined {
    return this.byKey.get(templateKey(event, channel, language));
  }

  /** Locale fallback: exact (`en-US`) → language (`en`) → `zh-CN`. */
  resolve(event: string, channel: string, locale: string | null | undefined): CompiledTemplate | undefined {
    for (const lang of languageCandidates(locale)) {
      const t = this.get(event, channel, lang);
      if (t) return t;
    }
    return undefined;
  }

  /**
   * The stored template that does not compile and that resolve() would otherwise have
   * passed over for a fallback language, if any: such an event must not be sent in the
   * wrong language or recorded as having no template.
   */
  invalidFor(event: string, channel: string, locale: string | null | undefined): InvalidTemplate | undefined {
    if (this.invalid.size === 0) return undefined;
    for (const lang of languageCandidates(locale)) {
      const key = templateKey(event, channel, lang);
      if (this.byKey.has(key)) return undefined;
      const bad = this.invalid.get(key);
      if (bad) return bad;
    }
    return undefined;
  }

  get size(): number {
    return this.byKey.size;
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.watcher?.stop();
    })();
    return this.stopped;
  }
}
