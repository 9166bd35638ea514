import t from "tap";
import { Type } from "typebox";
import { ConfigError, CsvList, LogEnv, NatsEnv, loadConfig } from "@notify/config";

const Schema = Type.Object({ ...NatsEnv, ...LogEnv, PORT: Type.Integer({ minimum: 1, maximum: 65535, default: 3000 }), KEYS: CsvList({ default: [] }) });

t.test("config - defaults and conversions", async (t) => {
  const c = loadConfig(Schema, { NATS_URL: "nats://a:4222, nats://b:4222", PORT: "8080", KEYS: "k1,k2" });
  t.same(c.NATS_URL, ["nats://a:4222", "nats://b:4222"]);
  t.equal(c.PORT, 8080);
  t.same(c.KEYS, ["k1", "k2"]);
  t.equal(c.NATS_REPLICAS, 1);
  t.equal(c.LOG_LEVEL, "info");
});

t.test("config - a bad variable stops start-up with its name", async (t) => {
  const err = (() => { try { loadConfig(Schema, { PORT: "eighty", LOG_LEVEL: "loud", NATS_PASS: "hunter2", NATS_REPLICAS: "9" }); } catch (e) { return e; } })() as ConfigError;
  t.ok(err instanceof ConfigError);
  t.match(err.message, /PORT/);
  t.match(err.message, /LOG_LEVEL/);
  t.match(err.message, /NATS_REPLICAS/);
  t.same(err.variables.sort(), ["LOG_LEVEL", "NATS_REPLICAS", "PORT"]);
  t.notMatch(err.message, /hunter2/, "secrets are not echoed");
});
