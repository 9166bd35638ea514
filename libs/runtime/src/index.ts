import type { Logger } from "@notify/log";

export interface ShutdownOptions {
  /** Give up draining after this long and exit non-zero. */
  timeoutMs?: number;
  signals?: NodeJS.Signals[];
}

/**
 * SIGTERM/SIGINT → `close()` (drain in-flight work, close NATS), then exit 0. A second
 * signal or a drain that takes longer than the timeout exits 1. Only main.ts calls this.
 */
export function handleSignals(log: Logger, close: () => Promise<void>, opts: ShutdownOptions = {}): void {
  const timeoutMs = opts.timeoutMs ?? 25_000;
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    closing = true;
    log.info({ signal }, "shutting down: draining in-flight work");
    const timer = setTimeout(() => {
      log.error({ timeoutMs }, "drain timed out");
      process.exit(1);
    }, timeoutMs);
    timer.unref();
    close().then(
      () => {
        log.info("stopped");
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  for (const s of opts.signals ?? ["SIGTERM", "SIGINT"]) process.on(s, onSignal);
}

/** Runs a service's start function; a start-up failure is logged with its cause and exits 1. */
export async function runMain(log: Logger, start: () => Promise<() => Promise<void>>, opts: ShutdownOptions = {}): Promise<void> {
  try {
    const close = await start();
    handleSignals(log, close, opts);
  } catch (err) {
    log.fatal({ err }, "failed to start");
    // Let pino flush before exiting.
    setTimeout(() => process.exit(1), 50);
  }
}
