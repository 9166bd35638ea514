import t from "tap";
import type { MsgHdrs } from "@nats-io/transport-node";
import { HeaderNames, Streams, Subjects, encodeJson, sendIdFor, type SendJob, type SmsPayload } from "@notify/contracts";
import { publishToDlq } from "@notify/nats";
import { AUTH, appFor, startNats } from "./fixtures/helpers.js";
import { paidJob } from "../../../test/support/fixtures.js";

const nats = await startNats(t);
const js = nats.topology.jsm.jetstream();

const goodJob: SendJob = paidJob("O-HOSTILE-OK", "evt_hostile_ok");
const send_id = goodJob.send_id;

/** Raw header bytes, as any NATS client (not only ours) can send them. */
const rawHeaders = (lines: string): MsgHdrs => ({ encode: () => Buffer.from(`NATS/1.0\r\n${lines}\r\n`) }) as unknown as MsgHdrs;

/** What a stray publisher, a bug or an attacker with publish rights may leave on the DLQ subjects. */
const hostile: { what: string; subject?: string; data: Uint8Array; headers?: MsgHdrs }[] = [
  { what: "not JSON", data: Buffer.from("{not json") },
  { what: "empty", data: new Uint8Array(0) },
  { what: "invalid UTF-8", data: Uint8Array.from([0xff, 0xfe, 0x7b, 0x80]) },
  { what: "a JSON array", data: encodeJson([goodJob]) },
  { what: "JSON null", data: Buffer.from("null") },
  { what: "a job without payload", data: encodeJson({ ...goodJob, payload: undefined }) },
  { what: "a send_id that is not a KV key", data: encodeJson({ ...goodJob, send_id: "../../etc passwd" }) },
  { what: "a number where the payload wants a string", data: encodeJson({ ...goodJob, payload: { ...goodJob.payload, data: { thing1: { value: 42 } } } }) },
  { what: "__proto__ in the body", data: Buffer.from(`{"__proto__":{"readable":true},"send_id":"x"}`) },
  { what: "a header name no client accepts", data: encodeJson(goodJob), headers: rawHeaders("bad key: 1\r\nNotify-Attempts: 3\r\n") },
  { what: "a body near max_payload", data: Buffer.alloc(900 * 1024, 0x61) },
  // JetStream stores at most 64 KiB of headers.
  { what: "huge header values", data: Buffer.from("x"), headers: rawHeaders(Array.from({ length: 40 }, (_, i) => `X-H${i}: ${"v".repeat(1500)}`).join("\r\n") + "\r\n") },
];

const seqs = new Map<string, number>();
t.before(async () => {
  for (const h of hostile) {
    // A core publish (no ack): the stream captures it whatever it holds.
    nats.nc.publish(h.subject ?? Subjects.dlq("wechat"), h.data, h.headers ? { headers: h.headers } : {});
  }
  await nats.nc.flush();
  const si = await nats.topology.jsm.streams.info(Streams.dlq);
  hostile.forEach((h, i) => seqs.set(h.what, si.state.first_seq + i));
  // A real job with a garbage attempts header, and one on a channel nobody configured.
  const h = { send_id, attempts: 0, last_error: "errcode 40003: invalid openid", reason: "wechat_permanent" };
  seqs.set("job, garbage attempts", (await js.publish(Subjects.dlq("wechat"), encodeJson(goodJob), { headers: rawHeadersFor({ [HeaderNames.attempts]: "1e400", [HeaderNames.reason]: h.reason }) })).seq);
  seqs.set("job, odd channel", (await publishToDlq(js, { ...goodJob, channel: "pigeon" }, { ...h, attempts: 2 })).seq);
});

function rawHeadersFor(o: Record<string, string>): MsgHdrs {
  return rawHeaders(Object.entries(o).map(([k, v]) => `${k}: ${v}\r\n`).join(""));
}

t.test("GET /notifications/dlq lists every message: jobs readable, the rest readable:false with size and headers", async (t) => {
  const app = await appFor(t, nats);
  const res = await app.inject({ method: "GET", url: "/notifications/dlq?limit=500", headers: AUTH });
  t.equal(res.statusCode, 200, res.body.slice(0, 300));
  const items = res.json().items as Record<string, unknown>[];
  t.equal(items.length, hostile.length + 2, "nothing skipped");
  for (const h of hostile) {
    const it = items.find((i) => i.seq === seqs.get(h.what))!;
    t.equal(it.readable, false, h.what);
    t.equal(it.size, h.data.length, `${h.what}: raw size`);
    t.type(it.error, "string", `${h.what}: says why`);
    t.equal(it.channel, "wechat");
  }
  const huge = items.find((i) => i.seq === seqs.get("huge header values"))! as { headers: { name: string; value: string }[] };
  t.equal(huge.headers.length, 32, "headers capped");
  t.ok(huge.headers.every((h) => h.value.length <= 513), "values cut");
  t.match(items.find((i) => i.seq === seqs.get("a header name no client accepts"))!.error, /headers not readable/);
  const odd = items.find((i) => i.seq === seqs.get("job, odd channel"))!;
  t.match(odd, { readable: true, channel: "pigeon", send_id, attempts: 2, reason: "wechat_permanent" });
  t.match(items.find((i) => i.seq === seqs.get("job, garbage attempts")), { readable: true, attempts: 0 }, "a malformed attempts header reads as 0");
});

t.test("inspect answers for every entry; replay refuses what is not a job (409), discard removes it", async (t) => {
  const app = await appFor(t, nats);
  for (const h of hostile) {
    const seq = seqs.get(h.what)!;
    const got = await app.inject({ method: "GET", url: `/notifications/dlq/${seq}`, headers: AUTH });
    t.equal(got.statusCode, 200, `${h.what}: inspect`);
    t.equal(got.json().readable, false);
    const replay = await app.inject({ method: "POST", url: `/notifications/dlq/${seq}/replay`, headers: AUTH });
    t.equal(replay.statusCode, 409, `${h.what}: replay`);
    t.match(replay.json().message, /not a job.*discarded/);
    t.equal((await app.inject({ method: "DELETE", url: `/notifications/dlq/${seq}`, headers: AUTH })).statusCode, 204, `${h.what}: discard`);
    t.equal((await app.inject({ method: "DELETE", url: `/notifications/dlq/${seq}`, headers: AUTH })).statusCode, 404, `${h.what}: gone`);
  }
  const job = await app.inject({ method: "GET", url: `/notifications/dlq/${seqs.get("job, odd channel")}`, headers: AUTH });
  t.equal(job.statusCode, 200);
  t.same(job.json().job, { ...goodJob, channel: "pigeon" });
});

t.test("sequences are bounded to 1..2^53−1 in the schema: 400 beyond, never rounded onto another entry", async (t) => {
  const app = await appFor(t, nats);
  const max = String(Number.MAX_SAFE_INTEGER);
  t.equal((await app.inject({ method: "GET", url: `/notifications/dlq/${max}`, headers: AUTH })).statusCode, 404, "2^53−1 is a valid, absent sequence");
  // 2^53+1 as a JSON number is 2^53; "1.0000000000000001" is 1: both must be refused, not rounded.
  for (const bad of ["9007199254740992", "9007199254740993", "18446744073709551616", "1.0000000000000001", "1e3", "0x10", "01", "0", "-1", "%201", "1%20"]) {
    for (const [method, url] of [
      ["GET", `/notifications/dlq/${bad}`],
      ["POST", `/notifications/dlq/${bad}/replay`],
      ["DELETE", `/notifications/dlq/${bad}`],
      ["GET", `/notifications/dlq?from_seq=${bad}`],
    ] as const) {
      const res = await app.inject({ method, url, headers: AUTH });
      t.equal(res.statusCode, 400, `${method} ${url}`);
      t.match(res.json().message, /seq/, "names the parameter");
    }
  }
  const last = await app.inject({ method: "GET", url: `/notifications/dlq?from_seq=${max}`, headers: AUTH });
  t.equal(last.statusCode, 200);
  t.same(last.json().items, []);
  const seq = seqs.get("job, odd channel")!;
  const exact = await app.inject({ method: "GET", url: `/notifications/dlq/${seq}`, headers: AUTH });
  t.equal(exact.json().seq, seq);
});

t.test("an SMS job in the DLQ is readable, shown with its number masked, and replays unchanged", async (t) => {
  const app = await appFor(t, nats);
  const sms: SendJob<SmsPayload> = { ...goodJob, send_id: sendIdFor({ event: "order.paid", order_id: "O-HOSTILE-SMS", ticket_id: null, channel: "sms" }), channel: "sms", order_id: "O-HOSTILE-SMS", payload: { phone: "+8613812345678", template_id: "1234567", params: ["West Lake", "128.5"] } };
  const { seq } = await publishToDlq(js, sms, { send_id: sms.send_id, attempts: 1, last_error: "FailedOperation.PhoneNumberInBlacklist", reason: "sms_permanent" });
  const got = await app.inject({ method: "GET", url: `/notifications/dlq/${seq}`, headers: AUTH });
  t.equal(got.statusCode, 200);
  t.match(got.json(), { readable: true, channel: "sms", job: { payload: { template_id: "1234567", params: ["West Lake", "128.5"] } } });
  t.equal(got.json().job.payload.phone, "+*********5678", "masked");
  const replay = await app.inject({ method: "POST", url: `/notifications/dlq/${seq}/replay`, headers: AUTH });
  t.equal(replay.statusCode, 200);
  const m = await nats.topology.jsm.streams.getMessage(Streams.sends, { seq: replay.json().sends_seq });
  t.same(JSON.parse(Buffer.from(m!.data).toString()), sms, "the stored job, number unmasked, is what is sent again");
});
