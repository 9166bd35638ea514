// WeChat's keyword rules end to end: dispatcher → sender → the real simulator. A 30 KB
// thing under `reject` is recorded failed (field_rule) and never reaches WeChat; under
// `truncate` it arrives cut; colours and first/remark never reach WeChat.
import t from "tap";
import { FailReason, Status } from "@notify/contracts";
import { Stack } from "../support/stack.js";
import { paidEvent, paidTemplate } from "../support/fixtures.js";

let stack: Stack;

t.before(async () => {
  stack = await Stack.start({ senders: 1 });
  await stack.putTemplate(paidTemplate({ field_policy: "reject", data: { thing1: "{{title}}", amount2: "¥{{amount}}", remark: { value: "感谢", color: "#173177" } } }));
  await stack.putTemplate(paidTemplate({ language: "en", template_id: "TPL_PAID_EN", field_policy: "truncate", data: { thing1: { value: "{{title}}", color: "#ff0000" }, amount2: "¥{{amount}}" } }));
});
t.teardown(() => stack.close());

const huge = "West Lake night tour, with fireworks ".repeat(800); // ~30 KB

t.test("pipeline field rules - reject: a 30 KB thing is recorded failed field_rule, WeChat never called", async (t) => {
  const calls = stack.sim.stats().sendCalls;
  const e = paidEvent({ data: { amount: 128.5, title: huge } });
  await stack.publish(e);
  const rec = await stack.waitStatus(e, Status.failed);
  t.equal(rec.reason, FailReason.fieldRule);
  t.match(rec.last_error, /^thing1: \d+ characters, thing allows at most 20/, "names the field and the rule");
  t.same((rec.errors as Array<{ field: string; rule: string }>).map((x) => [x.field, x.rule]), [["thing1", "thing"]]);
  t.equal(stack.sim.messagesTo(e.recipient.openid).length, 0, "nothing sent");
  t.equal(stack.sim.stats().sendCalls, calls, "no WeChat call at all");
});

t.test("pipeline field rules - reject: a valid event is sent without remark and colour", async (t) => {
  const e = paidEvent();
  await stack.publish(e);
  await stack.waitStatus(e, Status.success);
  t.same(stack.sim.deliveriesFor(stack.sendId(e))[0]!.data, { thing1: { value: "West Lake night tour" }, amount2: { value: "¥128.5" } });
});

t.test("pipeline field rules - truncate: the thing arrives cut to 19 characters + …, line breaks removed", async (t) => {
  const e = paidEvent({ recipient: { openid: "oTruncate1", locale: "en" }, data: { amount: 5, title: `Night\ntour ${huge}` } });
  await stack.publish(e);
  const rec = await stack.waitStatus(e, Status.success);
  t.equal(rec.attempts, 1);
  const m = stack.sim.deliveriesFor(stack.sendId(e))[0]!;
  t.same(m.data, { thing1: { value: "Night tour West Lak…" }, amount2: { value: "¥5" } }, "cut, no colour");
});
