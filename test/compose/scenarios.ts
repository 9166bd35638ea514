// The scenarios test/compose/run.sh runs against the Compose deployment (docker-compose.yml:
// 3 NATS nodes with R3 streams and buckets, the WeChat simulator, gateway, dispatcher,
// senders, DLQ monitor, projector and its PostgreSQL). Each scenario publishes 1,000 events
// and disturbs the system mid-run; at the end every business key must be delivered exactly
// once, every record be final, and the projector's SQL send log hold every record as
// success. One summary line per scenario. Exits 1 on any failure.
import { execFileSync } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { jetstream, jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { Buckets, Consumers, FINAL_STATUSES, Streams, Status, lockKey, type EventEnvelope } from "@notify/contracts";
import { RecordStore } from "@notify/nats";
import { openDb } from "@notify/sendlog";
import { SimulatorControl, type SimMessage } from "@notify/wechat-simulator";
import { paidEvent, paidTemplate } from "../support/fixtures.js";
import { publishReliably, putTemplate, readRecords, sendIdOf, statusCounts, summaryLine, type Tally } from "../support/chaos.js";

const composeCmd = JSON.parse(process.env.COMPOSE_CMD_JSON ?? "[]") as string[];
const dockerBin = process.env.DOCKER_BIN ?? "docker";
const project = process.env.COMPOSE_PROJECT ?? "notifyci";
const network = `${project}_default`;
const EVENTS = Number(process.env.COMPOSE_EVENTS ?? 1000);

const sh = (bin: string, args: string[]): string => execFileSync(bin, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
const docker = (...args: string[]) => sh(dockerBin, args);
const compose = (...args: string[]) => sh(composeCmd[0]!, [...composeCmd.slice(1), ...args]);
const container = (service: string, i = 1) => `${project}-${service}-${i}`;
const ipOf = (name: string) => docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}", name).split(" ")[0]!;
const log = (m: string) => console.log(`compose: ${m}`);

/** The PubAck each published event got (event id → sequence, duplicate flag, time). */
const pubAcks = new Map<string, { seq: number; duplicate: boolean; at: number; republishedAs?: string }>();

/** Every message the simulator accepted, read incrementally. */
class Deliveries {
  all: SimMessage[] = [];
  private last = 0;
  constructor(private sim: SimulatorControl) {}
  async poll(): Promise<void> {
    for (;;) {
      const r = await this.sim.messages({ after: this.last, limit: 5000 });
      this.all.push(...r.messages);
      if (r.messages.length === 0) return;
      this.last = r.last_seq;
    }
  }
}

function tallyOf(msgs: SimMessage[], events: EventEnvelope[]): Tally {
  const byId = new Map<string, number>();
  const byUser = new Map<string, number>();
  for (const m of msgs) {
    if (m.client_msg_id) byId.set(m.client_msg_id, (byId.get(m.client_msg_id) ?? 0) + 1);
    byUser.set(m.touser, (byUser.get(m.touser) ?? 0) + 1);
  }
  const t: Tally = { events: events.length, delivered: 0, lost: 0, duplicated: 0, dlq: 0 };
  for (const e of events) {
    const sid = sendIdOf(e);
    if (msgs.some((m) => m.client_msg_id === sid && m.touser === e.recipient.openid)) t.delivered++;
    else t.lost++;
    if ((byId.get(sid) ?? 0) > 1 || (byUser.get(e.recipient.openid) ?? 0) > 1) t.duplicated++;
  }
  return t;
}

/** Longest gap between consecutive deliveries of these events, from the first publish. */
function longestStall(msgs: SimMessage[], events: EventEnvelope[], startMs: number): number {
  const users = new Set(events.map((e) => e.recipient.openid));
  const times = msgs.filter((m) => users.has(m.touser)).map((m) => m.accepted_at).sort((a, b) => a - b);
  let prev = startMs;
  let worst = 0;
  for (const at of times) {
    worst = Math.max(worst, at - prev);
    prev = at;
  }
  return worst;
}

interface Ctx {
  nc: NatsConnection;
  jsm: JetStreamManager;
  deliveries: Deliveries;
}

async function waitUntil(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(500);
  }
}

/** Publishes EVENTS events over ~15 s; `disturb` runs alongside; then waits for every delivery. */
async function scenario(ctx: Ctx, name: string, disturb: () => Promise<Record<string, string | number>>): Promise<{ ok: boolean; events: EventEnvelope[] }> {
  const js = jetstream(ctx.nc);
  const events = Array.from({ length: EVENTS }, () => paidEvent());
  const start = Date.now();
  const publishing = (async () => {
    for (let i = 0; i < events.length; i += 20) {
      await Promise.all(
        events.slice(i, i + 20).map(async (e) => {
          const ack = await publishReliably(js, e, 120_000);
          pubAcks.set(e.id, { seq: ack.seq, duplicate: ack.duplicate, at: Date.now(), ...(ack.republishedAs ? { republishedAs: ack.republishedAs } : {}) });
        }),
      );
      await sleep(300);
    }
  })();
  const extra = await disturb();
  await publishing;
  const users = new Set(events.map((e) => e.recipient.openid));
  let lastErr = "";
  try {
    await waitUntil(`every event of ${name} delivered`, 240_000, async () => {
      await ctx.deliveries.poll();
      const n = new Set(ctx.deliveries.all.filter((m) => users.has(m.touser)).map((m) => m.touser)).size;
      lastErr = `${n}/${events.length} delivered`;
      return n === events.length;
    });
  } catch (err) {
    log(`${(err as Error).message} (${lastErr})`);
  }
  await sleep(3000); // late duplicates, if any, arrive now
  await ctx.deliveries.poll();
  const t = tallyOf(ctx.deliveries.all, events);
  const stall = longestStall(ctx.deliveries.all, events, start);
  // Publishes answered "duplicate" of a copy EVENTS did not hold, and published again.
  const republished = events.filter((e) => pubAcks.get(e.id)?.republishedAs).length;
  console.log(summaryLine(name, t, Date.now() - start, { longest_stall: `${(stall / 1000).toFixed(1)}s`, ...(republished ? { republished } : {}), ...extra }));
  if (t.lost > 0) await explainLost(ctx, events).catch((err: Error) => log(`could not explain the lost keys: ${err.message}`));
  return { ok: t.lost === 0 && t.duplicated === 0 && t.delivered === t.events, events };
}

/**
 * For each undelivered key: its record history and every log line that names its send_id
 * in the dispatcher's and senders' containers, so a failed run says where the key stopped.
 */
async function explainLost(ctx: Ctx, events: EventEnvelope[]): Promise<void> {
  const si = await ctx.jsm.streams.info(Streams.events).catch(() => null);
  if (si) log(`EVENTS: ${si.state.messages} messages, seq ${si.state.first_seq}..${si.state.last_seq}, leader ${si.cluster?.leader}`);
  const delivered = new Set(ctx.deliveries.all.map((m) => m.client_msg_id));
  const lostEvents = events.filter((e) => !delivered.has(sendIdOf(e)));
  const lost = lostEvents.map((e) => sendIdOf(e)).slice(0, 5);
  const kvm = new Kvm(ctx.nc);
  const records = new RecordStore(await kvm.open(Buckets.records));
  const locks = await kvm.open(Buckets.locks);
  // Where an event without a record stopped: in EVENTS or not, seen by the dispatcher or not.
  const inEvents = await eventsHolding(ctx, new Set(lostEvents.map((e) => e.id))).catch((err: Error) => new Map<string, number>([[`unreadable: ${err.message}`, 0]]));
  const dc = await ctx.jsm.consumers.info(Streams.events, Consumers.dispatcher).catch(() => null);
  if (dc) log(`dispatcher consumer: delivered ${dc.delivered.stream_seq}, ack floor ${dc.ack_floor.stream_seq}, pending ${dc.num_pending}, ack pending ${dc.num_ack_pending}, redelivered ${dc.num_redelivered}`);
  const containers = docker("ps", "-a", "--format", "{{.Names}}", "--filter", `label=com.docker.compose.project=${project}`)
    .split("\n")
    .filter((c) => /-(dispatcher|sender)-\d+$/.test(c));
  for (const sid of lost) {
    const e = lostEvents.find((x) => sendIdOf(x) === sid)!;
    const lock = await locks.get(lockKey({ event: e.event, order_id: e.order_id, ticket_id: e.ticket_id ?? null, channel: "wechat" })).catch(() => null);
    const ack = pubAcks.get(e.id);
    const atAckSeq = ack ? await ctx.jsm.streams.getMessage(Streams.events, { seq: ack.seq }).catch(() => null) : null;
    log(
      `lost ${sid}: event ${e.id} ${inEvents.has(e.id) ? `in EVENTS at seq ${inEvents.get(e.id)}` : "NOT in EVENTS"}; ` +
        `PubAck ${ack ? `seq ${ack.seq} duplicate ${ack.duplicate} at ${new Date(ack.at).toISOString()}` : "none"} (that seq now holds ${atAckSeq ? (atAckSeq.header?.get("Nats-Msg-Id") ?? "?") : "nothing"}); ` +
        `lock ${lock && lock.operation === "PUT" ? lock.string() : "absent"}`,
    );
    const history = await records.history(sid).catch((err: Error) => [{ status: `history unreadable: ${err.message}` }]);
    log(`lost ${sid}: record history ${JSON.stringify(history.map((r) => ({ status: r.status, attempts: "attempts" in r ? r.attempts : undefined, updated_at: "updated_at" in r ? r.updated_at : undefined })))}`);
    for (const c of containers) {
      let lines: string[] = [];
      try {
        lines = execFileSync(dockerBin, ["logs", c], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 256 * 1024 * 1024 })
          .split("\n")
          .filter((l) => l.includes(sid) || l.includes(e.id));
      } catch (err) {
        lines = [`logs unreadable: ${(err as Error).message}`];
      }
      for (const l of lines.slice(0, 20)) log(`lost ${sid}: ${c.replace(`${project}-`, "")}: ${l.slice(0, 600)}`);
    }
  }
}

/** EVENTS sequence of each event id asked for (a scan of the stream's last messages). */
async function eventsHolding(ctx: Ctx, ids: Set<string>): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const si = await ctx.jsm.streams.info(Streams.events);
  for (let seq = si.state.last_seq; seq >= Math.max(si.state.first_seq, si.state.last_seq - 6 * EVENTS) && out.size < ids.size; seq--) {
    const m = await ctx.jsm.streams.getMessage(Streams.events, { seq }).catch(() => null);
    if (!m) continue;
    const id = m.header?.get("Nats-Msg-Id") ?? "";
    if (ids.has(id)) out.set(id, seq);
  }
  return out;
}

async function main(): Promise<void> {
  const natsUrls = [1, 2, 3].map((i) => `nats://${ipOf(container(`nats-${i}`))}:4222`);
  const sim = new SimulatorControl(`http://${ipOf(container("wechat-simulator"))}:8090`);
  const nc = await connect({ servers: natsUrls, maxReconnectAttempts: -1, reconnectTimeWait: 500, name: "compose-scenarios" });
  const jsm = await jetstreamManager(nc);
  const kvm = new Kvm(nc);
  await putTemplate(await kvm.open(Buckets.templates), paidTemplate());
  for (const s of [Streams.events, Streams.sends]) {
    const si = await jsm.streams.info(s);
    log(`${s}: ${si.config.num_replicas} replicas, leader ${si.cluster?.leader}`);
  }
  const ctx: Ctx = { nc, jsm, deliveries: new Deliveries(sim) };
  const results: { ok: boolean; events: EventEnvelope[] }[] = [];
  const failures: string[] = [];

  results.push(
    await scenario(ctx, "compose-scale-senders", async () => {
      await sleep(4000);
      compose("up", "-d", "--no-build", "--no-recreate", "--scale", "sender=3", "sender");
      const n = docker("ps", "-q", "--filter", `label=com.docker.compose.project=${project}`, "--filter", "label=com.docker.compose.service=sender").split("\n").filter(Boolean).length;
      return { senders: `1->${n}` };
    }),
  );

  results.push(
    await scenario(ctx, "compose-kill-sends-leader", async () => {
      await sleep(4000);
      const leader = (await jsm.streams.info(Streams.sends)).cluster?.leader ?? "nats-1";
      docker("kill", container(leader));
      const down = Date.now();
      const newLeader = await waitUntil("a new SENDS leader", 60_000, async () => {
        const l = (await jsm.streams.info(Streams.sends)).cluster?.leader;
        return Boolean(l && l !== leader);
      });
      await sleep(8000);
      docker("start", container(leader));
      return { killed: leader, new_leader_after: `${(newLeader / 1000).toFixed(1)}s`, down: `${((Date.now() - down) / 1000).toFixed(0)}s` };
    }),
  );

  let partitioned = "";
  results.push(
    await scenario(ctx, "compose-partition-20s", async () => {
      await sleep(4000);
      const sendsLeader = (await jsm.streams.info(Streams.sends)).cluster?.leader;
      partitioned = ["nats-3", "nats-2", "nats-1"].find((n) => n !== sendsLeader)!;
      const alias = partitioned;
      const leaders = async () => (await Promise.all([Streams.events, Streams.sends, `KV_${Buckets.records}`].map(async (n) => `${n}:${(await jsm.streams.info(n).catch(() => null))?.cluster?.leader ?? "?"}`))).join(" ");
      log(`partition: ${partitioned} cut off at ${new Date().toISOString()}; leaders before ${await leaders()}`);
      docker("network", "disconnect", network, container(partitioned));
      await sleep(20_000);
      docker("network", "connect", "--alias", alias, network, container(partitioned));
      log(`partition: healed at ${new Date().toISOString()}; leaders ${await leaders()}`);
      return { partitioned };
    }),
  );
  // The partitioned node caught up: current in every stream it replicates.
  const streams = [...Object.values(Streams), ...Object.values(Buckets).map((b) => `KV_${b}`)];
  try {
    const ms = await waitUntil(`${partitioned} to catch up`, 120_000, async () => {
      for (const s of streams) {
        const c = (await jsm.streams.info(s)).cluster;
        if (c?.leader === partitioned) continue;
        const r = c?.replicas?.find((x) => x.name === partitioned);
        if (!r || !r.current || (r.lag ?? 0) > 0) return false;
      }
      return true;
    });
    log(`${partitioned} caught up on ${streams.length} streams ${(ms / 1000).toFixed(1)}s after the scenario`);
  } catch (err) {
    failures.push((err as Error).message);
  }

  for (const [name, how] of [["compose-sender-docker-stop", "stop"], ["compose-sender-docker-kill", "kill"]] as const) {
    results.push(
      await scenario(ctx, name, async () => {
        await sleep(4000);
        const c = container("sender", how === "stop" ? 1 : 2);
        const t0 = Date.now();
        docker(how, c);
        const stopped = Date.now() - t0;
        await sleep(3000);
        docker("start", c);
        return { sender: c.replace(`${project}-`, ""), [how]: `${(stopped / 1000).toFixed(1)}s` };
      }),
    );
  }

  // Every record final (success), SENDS empty.
  const records = new RecordStore(await kvm.open(Buckets.records));
  const all = results.flatMap((r) => r.events);
  const counts = statusCounts(await readRecords(records, all.map((e) => sendIdOf(e))));
  const final = Object.entries(counts).filter(([s]) => FINAL_STATUSES.has(s as Status)).reduce((n, [, c]) => n + c, 0);
  log(`records: ${JSON.stringify(counts)} (${final} of ${all.length} final)`);
  if ((counts[Status.success] ?? 0) !== all.length) failures.push(`records not all success: ${JSON.stringify(counts)}`);
  // The projector followed every record into PostgreSQL, through all five disturbances.
  const db = await openDb({ databaseUrl: `postgres://notify:${process.env.POSTGRES_PASSWORD ?? "notify-local"}@${ipOf(container("postgres"))}:5432/sendlog` });
  const ids = all.map((e) => sendIdOf(e));
  let inSql = "";
  await waitUntil("the send log to hold every record as success", 120_000, async () => {
    const rows = await db.query<{ status: string; n: string }>("SELECT status, count(*) AS n FROM notification_events WHERE send_id = ANY($1) GROUP BY status", [ids]);
    inSql = JSON.stringify(Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])));
    return rows.length === 1 && rows[0]!.status === Status.success && Number(rows[0]!.n) === ids.length;
  })
    .then((ms) => log(`send log (PostgreSQL, projector): ${inSql} ${(ms / 1000).toFixed(1)}s after the records`))
    .catch((err: Error) => failures.push(`${err.message}: ${inSql}`))
    .finally(() => db.close());
  await waitUntil("SENDS to be empty", 60_000, async () => (await jsm.streams.info(Streams.sends)).state.messages === 0).catch((err: Error) =>
    failures.push(err.message),
  );
  for (const [i, r] of results.entries()) if (!r.ok) failures.push(`scenario ${i + 1} lost or duplicated events`);
  await nc.close();
  if (failures.length) {
    for (const f of failures) console.log(`compose: FAILED: ${f}`);
    process.exit(1);
  }
  log(`all ${results.length} scenarios: ${all.length} events, every key delivered once, every record success`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
