import t from "tap";
import { connect } from "@nats-io/transport-node";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Streams, Subjects, decodeJson, type AlertFact } from "@notify/contracts";
import { ensureTopology } from "@notify/nats";
import { NatsServer } from "@notify/nats-server";
import { createMetrics } from "@notify/metrics";
import { PROVIDER_ALERT_WINDOW_MS, createProviderAlert } from "@notify/alerting";
import { captureLogger } from "../../../test/support/webhook.js";
import { waitFor } from "../../../test/support/wait.js";

t.test("provider alerts - replicas raising the same quota alert in one window store one fact; the next window stores another", async (t) => {
  const server = await NatsServer.start();
  t.teardown(() => server.stop());
  const nc = await connect({ servers: server.url, noAsyncTraces: true });
  t.teardown(() => nc.close());
  await ensureTopology(nc, { channels: [] });
  const jsm = await jetstreamManager(nc);
  const logs = captureLogger("sender");
  let clock = Date.parse("2026-11-24T08:00:00Z");
  const metrics = createMetrics("sender");
  const replicas = [0, 1].map(() => createProviderAlert({ js: jetstream(nc), log: logs.log, metrics, now: () => clock }));

  replicas[0]!("quota_exceeded", "wechat", "45009: reach max api daily quota limit");
  replicas[1]!("quota_exceeded", "wechat", "45009: reach max api daily quota limit");
  clock += PROVIDER_ALERT_WINDOW_MS;
  replicas[0]!("quota_exceeded", "wechat", "45009: reach max api daily quota limit");

  const facts = async () => {
    const si = await jsm.streams.info(Streams.notifications);
    const out: AlertFact[] = [];
    for (let seq = si.state.first_seq; seq <= si.state.last_seq && si.state.messages > 0; seq++) {
      const m = await jsm.streams.getMessage(Streams.notifications, { seq }).catch(() => null);
      if (m?.subject === Subjects.alert) out.push(decodeJson<AlertFact>(m.data));
    }
    return out;
  };
  await waitFor(async () => (await facts()).length >= 2, "two alert facts stored");
  const stored = await facts();
  t.equal(stored.length, 2, "one fact per window, not one per replica");
  t.match(stored[0], { kind: "quota_exceeded", channel: "wechat", value: 1, threshold: 1 });
  t.equal(logs.lines().filter((l) => l.includes('"quota_exceeded"')).length, 3, "each raise is logged at error by its replica");
  const sample = (await metrics.alertsTotal.get()).values.find((v) => v.labels.kind === "quota_exceeded");
  t.equal(sample?.value, 3, "counted per raise");
});
