import type { KV } from "@nats-io/kv";
import { encodeJson, fallbackJobKey, type SendJob } from "@notify/contracts";
import type { Logger } from "@notify/log";

/**
 * What a sender leaves in `wechat_msgids` after the provider accepted a message, so the
 * gateway's delivery callbacks (WeChat receipts, SMS status reports) find the send: the
 * provider's id → send_id, and for a WeChat send with an SMS fallback the prepared SMS
 * job (a `failed:user block` receipt publishes it). One module for both channels.
 *
 * The message is sent whatever this meets: a lost entry only makes its receipt "unknown"
 * (or its fallback impossible), so failures are logged, never thrown.
 */
export async function rememberSend(kv: KV | undefined, key: string, job: SendJob, log: Logger): Promise<void> {
  if (!kv) return;
  try {
    // The fallback first: a receipt finds the send only once the id is there.
    if (job.fallback) await kv.put(fallbackJobKey(job.send_id), encodeJson(job.fallback));
    await kv.put(key, job.send_id);
  } catch (err) {
    log.warn({ err, send_id: job.send_id }, "provider id → send_id not stored: its delivery receipt will be unknown");
  }
}
