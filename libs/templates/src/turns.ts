/**
 * One heavy synchronous job (a template compile: up to tens of ms on a hostile template)
 * per event-loop turn. Jobs queue and each runs in its own setImmediate, so timers and I/O
 * get a turn between two jobs: twenty concurrent upserts no longer block the loop for the
 * sum of their compiles.
 */
export class Turns {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(job: () => T): Promise<T> {
    const next = this.tail.then(
      () =>
        new Promise<T>((resolve, reject) =>
          setImmediate(() => {
            try {
              resolve(job());
            } catch (err) {
              reject(err instanceof Error ? err : new Error(String(err)));
            }
          }),
        ),
    );
    this.tail = next.catch(() => undefined);
    return next;
  }
}
