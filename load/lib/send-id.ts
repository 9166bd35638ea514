/**
 * The send_id the dispatcher derives for a business key, re-stated for k6 (which has no
 * node:crypto and cannot import the workspace). The owner is `sendIdFor` in
 * libs/contracts/src/keys.ts; test/deploy/k6-typecheck.test.ts proves both agree.
 *
 * Only plain ids (`[\w-]`, no ticket) are supported: that is what the load scripts
 * generate, and such ids are used verbatim in the lock key.
 */
export type Sha256Hex = (input: string) => string;

/** Stands for "no ticket_id" in a lock key. */
const NO_TICKET = "=";

export function orderSendId(sha256Hex: Sha256Hex, event: string, orderId: string, channel = "wechat"): string {
  if (!/^[\w-]+$/.test(orderId)) throw new Error(`orderSendId: order id must match [\\w-]+, got ${orderId}`);
  const lockKey = [event, channel, orderId, NO_TICKET].join(".");
  return `snd_${sha256Hex(lockKey).slice(0, 32)}`;
}
