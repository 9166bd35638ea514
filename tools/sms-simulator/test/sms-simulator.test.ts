import t from "tap";
import { startSmsSimulator, splitE164 } from "@notify/sms-simulator";

t.test("sms simulator - unsigned and malformed requests get Tencent's error shapes, never a crash", async (t) => {
  const sim = await startSmsSimulator();
  t.teardown(() => sim.close());
  const post = async (headers: Record<string, string>, body: string) => (await (await fetch(sim.url, { method: "POST", headers, body })).json()) as { Response: { Error?: { Code: string }; RequestId: string } };
  t.equal((await post({ "content-type": "application/json" }, "{}")).Response.Error?.Code, "AuthFailure.InvalidAuthorization");
  const forged = `TC3-HMAC-SHA256 Credential=${sim.secretId}/2020-01-01/sms/tc3_request, SignedHeaders=content-type;host, Signature=${"0".repeat(64)}`;
  t.equal((await post({ authorization: forged, "x-tc-timestamp": String(Math.floor(Date.now() / 1000)) }, "{}")).Response.Error?.Code, "AuthFailure.SignatureFailure");
  const other = `TC3-HMAC-SHA256 Credential=AKIDother/2020-01-01/sms/tc3_request, SignedHeaders=content-type;host, Signature=${"0".repeat(64)}`;
  t.equal((await post({ authorization: other }, "{}")).Response.Error?.Code, "AuthFailure.SecretIdNotFound");
  t.equal(sim.stats().authFailures, 3);
  t.equal(sim.messages.length, 0);
  const bad = await fetch(`${sim.url}/_sim/faults`, { method: "POST", body: JSON.stringify({ kind: "status" }) });
  t.equal(bad.status, 400, "a status fault without a code is refused");
  t.equal((await fetch(`${sim.url}/nope`)).status, 404);
});

t.test("sms simulator - E.164 split for reports", async (t) => {
  t.same(splitE164("+8613812345678"), { nationcode: "86", mobile: "13812345678" });
  t.same(splitE164("+14155550123"), { nationcode: "1", mobile: "4155550123" });
  t.same(splitE164("+85291234567"), { nationcode: "852", mobile: "91234567" });
});
