import type { AlertFact, SendJob } from "@notify/contracts";

/**
 * What a provider said about one send, classified. The sender turns it into a decision:
 * success → ack; retryable → nak with backoff; permanent → DLQ + term; quota → park.
 */
export type SendOutcome =
  | { kind: "success"; providerMsgId?: string; code: string }
  | {
      kind: "retryable" | "permanent" | "quota";
      code: string;
      error: string;
      /** The provider said when to try again (at least this long). */
      retryAfterMs?: number;
      /** The same as an instant (epoch ms), when the provider names one (WeChat's quota reset): exact whatever time passed since. */
      retryAt?: number;
      /** An operator should hear of it (e.g. the forced token refresh budget is spent). */
      alert?: AlertFact["kind"];
      /** The call may have been delivered (no answer came back): see `Channel.dedupWindowMs`. */
      uncertain?: true;
    };

/**
 * A delivery channel. WeChat is the one implemented; SMS can be added as another
 * implementation and enabled per deployment (it is off by default).
 */
export interface Channel {
  readonly name: string;
  /** The provider account (WeChat appid) the quota gauges are labelled with. */
  readonly account?: string;
  /**
   * How long the provider de-duplicates a repeated send id (WeChat's client_msg_id: 10
   * minutes). After a call with an uncertain outcome, no call is made once this has run
   * out: it could deliver twice. Absent: the provider has no such key (Tencent SMS).
   */
  readonly dedupWindowMs?: number;
  send(job: SendJob): Promise<SendOutcome>;
  /** Today's quota of the send API, where the provider reports it (WeChat's quota/get). */
  quota?(): Promise<{ daily_limit: number; used: number; remain: number }>;
  close(): Promise<void>;
}
