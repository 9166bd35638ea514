// The simulator refuses what WeChat refuses: a keyword value breaking the rule of its
// type answers 47003 `argument invalid! data.<key>.value invalid rid: …`, and our WeChat
// client classifies that as permanent (never retried).
import t from "tap";
import { WeChatClient } from "@notify/wechat";
import { startSimulator } from "@notify/wechat-simulator";

const APP = { appId: "wx-field-rules", appSecret: "field-rules-secret" };

t.test("wechat simulator - keyword rules", async (t) => {
  const sim = await startSimulator(APP);
  t.teardown(() => sim.close());
  const client = new WeChatClient({ ...APP, apiBase: sim.url, timeoutMs: 5000 });
  t.teardown(() => client.close());
  const send = (data: Record<string, { value: unknown; color?: string }>, touser = "oRules") =>
    client.sendTemplate({ touser, template_id: "TPL_RULES", data: data as Record<string, { value: string }> });

  // key → [valid, over the limit, with a line break]
  const cases: Record<string, [string, string, string]> = {
    thing1: ["West Lake night tour", "x".repeat(21), "West\nLake"],
    character_string2: ["O-1001", "A".repeat(33), "O-\r\n1001"],
    phrase3: ["配送中", "配送中请稍候", "配送\n中"],
    name4: ["张三", "张".repeat(11), "张\n三"],
    amount5: ["¥128.50", "¥12345678901", "¥128\n.50"],
    number6: ["42", "9".repeat(33), "4\n2"],
    time7: ["2019年10月1日 15:01", `${"15:01~".repeat(2)}15:02`, "15:01\n"],
    date8: ["2019-10-01", "2019-10-01~2019-10-02~2019-10-03", "2019-10-01\n"],
    car_number9: ["粤A8Z888挂", "粤A8Z888挂X", "粤A8Z\n888挂"],
    phone_number10: ["+86-0766-66888866", "1".repeat(18), "+86\n0766"],
    letter11: ["ABC", "z".repeat(33), "A\nB"],
    symbol12: ["#", "!!!!!!", "!\n"],
    const13: ["已支付", "x".repeat(21), "已\n支付"],
    keyword1: ["legacy keyword", "x".repeat(21), "a\u2028b"],
  };

  for (const [key, [valid, over, lineBreak]] of Object.entries(cases)) {
    const ok = await send({ [key]: { value: valid } });
    t.equal(ok.kind, "success", `${key}: a valid value is accepted`);
    for (const [what, value] of [["over the limit", over], ["a line break", lineBreak]] as const) {
      const r = await send({ [key]: { value } });
      t.equal(r.kind, "permanent", `${key} with ${what}: permanent, never retried`);
      t.equal(r.kind !== "success" && r.errcode, 47003, "errcode 47003");
      t.match(r.kind !== "success" ? r.error : "", new RegExp(`argument invalid! data\\.${key}\\.value invalid rid: `), "errmsg names the field as WeChat does");
    }
  }

  const raw = await fetch(`${sim.url}/cgi-bin/stable_token`, { method: "POST", body: JSON.stringify({ grant_type: "client_credential", appid: APP.appId, secret: APP.appSecret }) });
  const token = ((await raw.json()) as { access_token: string }).access_token;
  const post = (body: unknown) => fetch(`${sim.url}/cgi-bin/message/template/send?access_token=${token}`, { method: "POST", body: JSON.stringify(body) }).then((r) => r.json() as Promise<{ errcode: number; errmsg: string }>);
  const bad = await post({ touser: "oRaw", template_id: "T", data: { thing1: { value: "ok" }, amount2: { value: "CNY 5" } } });
  t.equal(bad.errcode, 47003);
  t.match(bad.errmsg, /^argument invalid! data\.amount2\.value invalid rid: [0-9a-f]{8}-simulator$/, "the exact WeChat shape");
  t.match(await post({ touser: "oRaw", template_id: "T", data: { thing1: { value: 5 } } }), { errcode: 47003, errmsg: /data\.thing1\.value invalid/ }, "a number where a string belongs");
  t.match(await post({ touser: "oRaw", template_id: "T", data: { thing1: null } }), { errcode: 47003, errmsg: /data\.thing1\.value invalid/ });
  t.match(await post({ touser: "oRaw", template_id: "T", data: { thing1: { value: "" } } }), { errcode: 47003 }, "an empty typed value");

  const legacy = await send({ first: { value: "您好，这是一段很长的开头语，超过二十个字也不会被检查" }, thing1: { value: "West Lake", color: "#173177" }, remark: { value: "x".repeat(100) } }, "oLegacy");
  t.equal(legacy.kind, "success", "first/remark and colours are accepted (WeChat ignores them)");

  const before = sim.stats();
  t.ok(before.fieldRuleRejections >= 28 + 4, "counted in fieldRuleRejections");
  t.equal(sim.messagesTo("oRules").length, Object.keys(cases).length, "only the valid values were recorded");
});
