import { isSmsPayload, type JobPayload } from "@notify/contracts";
import type { Logger } from "@notify/log";
import { TencentSmsClient } from "@notify/sms";
import type { Channel } from "./channel.js";

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
      if (r.kind === "success") return { kind: "success", providerMsgId: r.serialNo, code: r.code };
      return { kind: r.kind, code: r.code, error: r.error };
    },
    close: () => client.close(),
  };
}
