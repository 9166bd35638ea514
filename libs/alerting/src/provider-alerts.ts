import type { JetStreamClient } from "@nats-io/jetstream";
import { MsgIds, Subjects, encodeJson, type AlertFact } from "@notify/contracts";
import type { Logger } from "@notify/log";
import type { Metrics } from "@notify/metrics";

/** Alerts a service raises itself, from one provider answer (a sender's daily quota, its token refresh budget). */
export type ProviderAlert = (kind: AlertFact["kind"], channel: string, message: string, measure?: { value: number; threshold: number }) => void;

/** The kinds a sender raises itself; the alerting unit forwards them to the webhook. */
export const PROVIDER_ALERT_KINDS: ReadonlySet<AlertFact["kind"]> = new Set(["account_config", "quota_exceeded", "quota_usage", "token_refresh_budget"]);

/** Alerts of one kind and channel published within this window are stored once (the message id). */
export const PROVIDER_ALERT_WINDOW_MS = 120_000;

/**
 * The alert a sender raises when a provider refuses for a reason no retry fixes soon
 * (`quota_exceeded`, `token_refresh_budget`, `account_config`), or sees it coming (`quota_usage`): counted, logged at error and published on
 * `notification.alert` in the background (never holds the send). Every replica hitting
 * the quota in the same window publishes the same message id, so the stream keeps one
 * fact; the fact reader (`Alerting`) takes it into its de-duplication window.
 */
export function createProviderAlert(o: { js: JetStreamClient; log: Logger; metrics: Metrics; now?: () => number }): ProviderAlert {
  const now = o.now ?? Date.now;
  return (kind, channel, message, measure) => {
    const at = now();
    const fact: AlertFact = { kind, channel, message, value: measure?.value ?? 1, threshold: measure?.threshold ?? 1, at: new Date(at).toISOString() };
    o.metrics.alertsTotal.inc({ kind, channel });
    o.log.error({ alert: fact }, "alert");
    const msgID = MsgIds.alert(kind, channel, Math.floor(at / PROVIDER_ALERT_WINDOW_MS));
    o.js.publish(Subjects.alert, encodeJson(fact), { msgID }).catch((err: unknown) => o.log.warn({ err }, "alert publish failed"));
  };
}
