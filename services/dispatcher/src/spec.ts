import type { ServiceSpec } from "@notify/runtime";
import { loadDispatcherConfig, type DispatcherConfig } from "./config.js";
import { startDispatcher, type DispatcherServiceOptions } from "./service.js";

/**
 * The dispatcher as every main.ts is run (@notify/runtime). `hooks` is a test seam: the
 * crash scenarios start a process whose `afterClaim` exits between claim and publish.
 */
export function dispatcherService(hooks: Pick<DispatcherServiceOptions, "afterClaim"> = {}): ServiceSpec<DispatcherConfig> {
  return {
    name: "dispatcher",
    loadConfig: loadDispatcherConfig,
    // The sender consumers belong to the senders (their backoff follows the WeChat timeout).
    topology: (c) => ({ lockTtlMs: c.LOCK_TTL_MS, channels: [] }),
    start: async ({ config, nc, log, metrics, topology }) => {
      const service = await startDispatcher({ nc, log, metrics, topology, channels: config.CHANNELS, concurrency: config.DISPATCHER_CONCURRENCY, ...hooks });
      return service;
    },
  };
}
