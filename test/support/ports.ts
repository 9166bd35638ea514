import { readFileSync } from "node:fs";
import { createServer } from "node:net";

/** The kernel's range for outgoing connections' local ports (Linux default 32768–60999). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > 11_000 ? low : 32_768;
  } catch {
    return 32_768;
  }
}

function free(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => resolve(true)));
  });
}

/**
 * `count` consecutive free ports below the ephemeral range. A port from `freePort()` is in
 * that range, and so are its neighbours: any outgoing connection of a test running beside
 * (thousands of them in the suite) may hold one as its local port, and a listen on it then
 * fails with EADDRINUSE. Below the range only a listener can take a port.
 */
export async function freePortBlock(count: number): Promise<number> {
  const top = ephemeralLow() - count;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 10_000 + Math.floor(Math.random() * (top - 10_000));
    let ok = true;
    for (let p = base; p < base + count && ok; p++) ok = await free(p);
    if (ok) return base;
  }
  throw new Error(`no ${count} consecutive free ports found below ${top + count}`);
}
