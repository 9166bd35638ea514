/**
 * publishConfirmed on a real nats-server: a "duplicate" PubAck is trusted only when the
 * stream holds that copy. The failure it guards against (a duplicate answer naming a copy
 * the stream does not hold) is made here by deleting the first copy inside the duplicate
 * window: the server still remembers its message id.
 */
import t from "tap";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { NatsServer } from "@notify/nats-server";
import { publishConfirmed, republishId, streamHolds } from "@notify/nats";

const server = await NatsServer.start();
t.teardown(() => server.stop());
const nc = await connect({ servers: server.url });
t.teardown(() => nc.close());
const js = jetstream(nc);
const jsm = await jetstreamManager(nc);
await jsm.streams.add({ name: "CONF", subjects: ["conf.>"], duplicate_window: 60_000_000_000 });
const data = (s: string) => new TextEncoder().encode(s);
const count = async () => (await jsm.streams.info("CONF")).state.messages;

t.test("confirmed publish - a new message and a true duplicate pass straight through", async (t) => {
  const first = await publishConfirmed(js, jsm, "CONF", "conf.a", data("one"), { msgID: "evt-1" });
  t.same(first, { seq: first.seq, duplicate: false });
  const again = await publishConfirmed(js, jsm, "CONF", "conf.a", data("one"), { msgID: "evt-1" });
  t.same(again, { seq: first.seq, duplicate: true }, "the stored copy is found: no re-publish");
  t.ok(await streamHolds(jsm, "CONF", first.seq, "evt-1"));
  t.equal(await count(), 1);
});

t.test("confirmed publish - a duplicate answer with nothing behind it is published again, once", async (t) => {
  const first = await publishConfirmed(js, jsm, "CONF", "conf.b", data("two"), { msgID: "evt-2" });
  await jsm.streams.deleteMessage("CONF", first.seq);
  const before = await count();
  const raw = await js.publish("conf.b", data("two"), { msgID: "evt-2" });
  t.ok(raw.duplicate && raw.seq === first.seq, "the server answers 'duplicate' of a copy it no longer holds");
  const again = await publishConfirmed(js, jsm, "CONF", "conf.b", data("two"), { msgID: "evt-2" });
  t.equal(again.republishedAs, republishId("evt-2", 1), "re-published under a derived id");
  t.equal(again.duplicate, false);
  const m = await jsm.streams.getMessage("CONF", { seq: again.seq });
  t.equal(new TextDecoder().decode(m!.data), "two", "the same payload is stored");
  t.equal(await count(), before + 1);
  // The caller's next retry lands on that copy: nothing more is stored.
  const third = await publishConfirmed(js, jsm, "CONF", "conf.b", data("two"), { msgID: "evt-2" });
  t.same(third, { seq: again.seq, duplicate: true, republishedAs: republishId("evt-2", 1) });
  t.equal(await count(), before + 1, "still one copy");
});

t.test("confirmed publish - a sequence holding another message is not taken for ours", async (t) => {
  t.notOk(await streamHolds(jsm, "CONF", 1, "someone-else"), "a different id at that sequence");
  t.notOk(await streamHolds(jsm, "CONF", 10_000, "evt-1"), "no message at that sequence");
});
