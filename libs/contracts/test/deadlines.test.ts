import t from "tap";
import { Deadlines, TimeoutError } from "@notify/contracts";

t.test("deadlines - overdue entries fire once, oldest first; taken ones never; the timer stops when idle", async (t) => {
  const fired: string[] = [];
  const d = new Deadlines<{ deadline: number; name: string }>(40, 5, (e) => fired.push(e.name));
  const a = d.add({ deadline: 0, name: "a" });
  const b = d.add({ deadline: 0, name: "b" });
  const c = d.add({ deadline: 0, name: "c" });
  t.equal(d.size, 3);
  t.equal(d.take(b)?.name, "b", "answered before its deadline");
  t.equal(d.take(b), undefined, "ended once");
  t.ok(d.has(a) && d.has(c));
  await new Promise((r) => setTimeout(r, 200));
  t.same(fired, ["a", "c"], "the two left fire, in order");
  t.equal(d.size, 0);
  t.equal(d.take(a), undefined, "a timed-out entry cannot be taken");
  const e = d.add({ deadline: 0, name: "e" });
  t.same(d.drain().map((x) => x.name), ["e"], "drain hands back what is in flight");
  t.notOk(d.has(e));
  await new Promise((r) => setTimeout(r, 100));
  t.same(fired, ["a", "c"], "drained entries never fire");
  const err = new TimeoutError("no answer");
  t.equal(err.name, "TimeoutError");
  t.ok(err instanceof Error);
});
