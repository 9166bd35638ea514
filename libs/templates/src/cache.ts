import { KvWatchInclude, type KV } from "@nats-io/kv";
import { decodeJson, languageCandidates, parseTemplateKey, templateKey, type Template } from "@notify/contracts";
import { compileTemplate, type CompiledTemplate } from "./compile.js";

export interface TemplateCacheOptions {
  /** Called when a stored template does not compile (it is then left out of the cache). */
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
      for await (const e of iter) this.apply(e.key, e.operation, e.revision, e.value);
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
    if (op !== "PUT") {
      this.byKey.delete(key);
      this.opts.onChange?.(key, op);
      return;
    }
    try {
      this.byKey.set(key, compileTemplate(decodeJson<Template>(value), revision));
    } catch (err) {
      // Written around the gateway's validation: keep serving the other templates.
      this.byKey.delete(key);
      this.opts.onInvalid?.(key, err);
    }
    this.opts.onChange?.(key, "PUT");
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
