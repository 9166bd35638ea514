import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { CONTROL_PREFIX, control } from "./control-api.js";
import { Errcode, errorBody } from "./errcodes.js";
import type { Fault, FaultSpec } from "./faults.js";
import { BodyTooLargeError, sendJson, splitUrl } from "./http-util.js";
import type { SimMessage } from "./messages.js";
import type { ReceiptPush, ReceiptStatus, ReceiptTarget } from "./receipts.js";
import { SimState, resolveOptions, type SimStats, type SimulatorOptions } from "./state.js";
import type { QuotaView } from "./limits.js";
import { getToken, quotaGet, stableToken, templateSend } from "./wechat-api.js";

export interface Simulator {
  /** Base URL, e.g. `http://127.0.0.1:8090`: use it as WECHAT_API_BASE. */
  readonly url: string;
  readonly port: number;
  readonly appId: string;
  /** Every accepted message, oldest first (live view). */
  readonly messages: readonly SimMessage[];
  /** Messages delivered with this client_msg_id (one, unless de-duplication did not apply). */
  deliveriesFor(clientMsgId: string): readonly SimMessage[];
  messagesTo(openid: string): readonly SimMessage[];
  /** Adds a fault (see FaultSpec); returns it with its id. */
  setFault(spec: FaultSpec): Fault;
  /** Removes every fault, or only those for one openid; returns how many. */
  clearFaults(filter?: { openid?: string }): number;
  faults(): Fault[];
  /** Every issued access token expires now: the next send with one answers 42001. */
  expireTokens(): number;
  stats(): SimStats;
  /** Where delivery receipts go (null: none, the default). */
  setReceiptTarget(target: ReceiptTarget | null): void;
  /** The receipt status for messages to this openid (default success; null clears). */
  setReceiptOutcome(openid: string, status: ReceiptStatus | null): void;
  /** Every receipt pushed, with the answers. */
  receipts(): readonly ReceiptPush[];
  /** Pushes a receipt for msgid now (a repeated push keeps createTime; forge signs with a wrong token). */
  pushReceipt(msgid: string, touser: string, opts?: { createTime?: number; forge?: boolean; status?: ReceiptStatus; tries?: number }): Promise<ReceiptPush>;
  /** The template/send quota today; `set` changes the limit and/or today's use. */
  quota(set?: { dailyLimit?: number; used?: number }): QuotaView;
  /** Caller IPs the token endpoints accept (null: any, the default). */
  setIpWhitelist(ips: readonly string[] | null): void;
  /** Clears messages, de-duplication, counters, faults and the day's quota use (tokens stay valid). */
  reset(): void;
  /** Stops listening and drops open connections; idempotent. */
  close(): Promise<void>;
}

/** Starts a WeChat API simulator on a real HTTP port (a free one by default). */
export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const cfg = resolveOptions(opts);
  const sim = new SimState(cfg);
  const server = createServer({ keepAlive: true }, (req, res) => {
    route(sim, req, res).catch((err: unknown) => onError(res, err));
  });
  // Clients keep connections alive between bursts; outlive undici's default 4 s idle time.
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 35_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(cfg.port, cfg.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const host = cfg.host === "0.0.0.0" || cfg.host === "::" ? "127.0.0.1" : cfg.host;
  return new SimulatorHandle(sim, server, `http://${host.includes(":") ? `[${host}]` : host}:${port}`, port);
}

async function route(sim: SimState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const { path, query } = splitUrl(req.url);
  if (path === "/cgi-bin/message/template/send" && req.method === "POST") return templateSend(sim, req, res, query);
  if (path === "/cgi-bin/stable_token" && req.method === "POST") return stableToken(sim, req, res);
  if (path === "/cgi-bin/token" && req.method === "GET") return getToken(sim, req, res, query);
  if (path === "/cgi-bin/openapi/quota/get" && req.method === "POST") return quotaGet(sim, req, res, query);
  if (path.startsWith(CONTROL_PREFIX)) return control(sim, req, res, path, query);
  sendJson(res, 404, { errcode: 404, errmsg: `no route ${req.method} ${path}` });
}

function onError(res: ServerResponse, err: unknown): void {
  if (err instanceof BodyTooLargeError) return sendJson(res, 413, errorBody(Errcode.dataFormat, err.message));
  // A client that went away mid-body is not an error worth an answer.
  if (res.destroyed) return;
  sendJson(res, 500, errorBody(Errcode.systemBusy));
}

class SimulatorHandle implements Simulator {
  private closing: Promise<void> | null = null;

  constructor(
    private readonly sim: SimState,
    private readonly server: Server,
    readonly url: string,
    readonly port: number,
  ) {}

  get appId(): string {
    return this.sim.cfg.appId;
  }
  get messages(): readonly SimMessage[] {
    return this.sim.log.messages;
  }
  deliveriesFor(clientMsgId: string): readonly SimMessage[] {
    return this.sim.log.deliveriesFor(clientMsgId);
  }
  messagesTo(openid: string): readonly SimMessage[] {
    return this.sim.log.messagesTo(openid);
  }
  setFault(spec: FaultSpec): Fault {
    return this.sim.faults.add(spec);
  }
  clearFaults(filter: { openid?: string } = {}): number {
    return this.sim.faults.clear(filter);
  }
  faults(): Fault[] {
    return this.sim.faults.list();
  }
  expireTokens(): number {
    return this.sim.tokens.expireAll(this.sim.now());
  }
  stats(): SimStats {
    return this.sim.stats();
  }
  reset(): void {
    this.sim.reset();
  }
  quota(set?: { dailyLimit?: number; used?: number }): QuotaView {
    const now = this.sim.now();
    return set ? this.sim.quota.set(now, set) : this.sim.quota.view(now);
  }
  setIpWhitelist(ips: readonly string[] | null): void {
    this.sim.whitelist.set(ips);
  }
  setReceiptTarget(target: ReceiptTarget | null): void {
    this.sim.receipts.configure(target);
  }
  setReceiptOutcome(openid: string, status: ReceiptStatus | null): void {
    this.sim.receipts.setOutcome(openid, status);
  }
  receipts(): readonly ReceiptPush[] {
    return this.sim.receipts.pushes;
  }
  pushReceipt(msgid: string, touser: string, opts: { createTime?: number; forge?: boolean; status?: ReceiptStatus; tries?: number } = {}): Promise<ReceiptPush> {
    const { createTime, ...rest } = opts;
    return this.sim.receipts.push(msgid, touser, createTime, rest);
  }

  close(): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      this.sim.close();
      this.server.close(() => resolve());
      // Idle keep-alive sockets and unanswered (timeout-fault) calls would hold close() open.
      this.server.closeAllConnections();
    });
    return this.closing;
  }
}
