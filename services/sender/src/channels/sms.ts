import type { KV } from "@nats-io/kv";
import { isSmsPayload, smsSidKey, type JobPayload } from "@notify/contracts";
import type { Logger } from "@notify/log";
import type { Metrics } from "@notify/metrics";
import { TencentSmsClient, smsCodeLabel } from "@notify/sms";
import type { Channel } from "./channel.js";
import { rememberSend } from "./provider-ids.js";

export interface SmsChannelOptions {
  endpoint: string;
  secretId: string;
  secretKey: string;
  sdkAppId: string;
  signName: string;
  region: string;
  timeoutMs: number;
  log: Logger;
  connections?: number;
  /** `wechat_msgids`: SerialNo (`sid`) → send_id, where the gateway's status-report callback finds the send. */
  msgids?: KV;
  /** Called once per SendSms call with its result class and code (metrics). */
  onResult?: (kind: string, code: string, durationMs: number) => void;
}

/** Tencent Cloud SMS as a delivery channel (`sender-sms` on `notify.send.sms`). */
export function createSmsChannel(o: SmsChannelOptions): Channel {
  const client = new TencentSmsClient({ ...o, ...(o.connections ? { connections: o.connections } : {}) });
  return {
    name: "sms",
    async send(job) {
      const payload = job.payload as JobPayload;
      // Only a job written around the dispatcher gets here without an SMS payload.
      if (!isSmsPayload(payload)) return { kind: "permanent", code: "bad_job", error: "an sms job without phone/params" };
      const r = await client.send({ phone: payload.phone, templateId: payload.template_id, params: payload.params, sessionContext: job.send_id });
      o.onResult?.(r.kind, r.code, r.durationMs);
      if (r.kind === "success") {
        await rememberSend(o.msgids, smsSidKey(r.serialNo), job, o.log);
        return { kind: "success", providerMsgId: r.serialNo, code: r.code };
      }
      return { kind: r.kind, code: r.code, error: r.error };
    },
    close: () => client.close(),
  };
}

/** `onResult` feeding `sms_sends_total{result,code}` and `sms_call_duration_seconds{result}`. */
export function smsMetrics(metrics: Metrics): NonNullable<SmsChannelOptions["onResult"]> {
  return (result, code, durationMs) => {
    metrics.smsSendsTotal.inc({ result, code: smsCodeLabel(code) });
    metrics.smsCallDuration.observe({ result }, durationMs / 1000);
  };
}
