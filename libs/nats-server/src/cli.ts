// `node libs/nats-server/dist/cli.js [--suite bookworm] [--cache DIR]`: prints the path of
// the nats-server the finder chooses (downloading it when it may), its log on stderr.
// With --suite/--cache only that cache is searched or filled (CI's 2.9 compatibility run).
import { parseArgs } from "node:util";
import { findNatsServer } from "./find-binary.js";

const { values } = parseArgs({ options: { suite: { type: "string" }, cache: { type: "string" } } });
const only = values.suite || values.cache ? { env: { PATH: "" }, extraDirs: [] } : {};
try {
  const found = findNatsServer({ ...only, cacheDir: values.cache, suite: values.suite, log: (m) => console.error(m) });
  console.log(found.path);
} catch (err) {
  console.error((err as Error).message);
  process.exit(1);
}
