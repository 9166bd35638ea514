import t from "tap";
import { ErrcodeClass, classifyErrcode } from "@notify/wechat";

t.test("wechat errcodes - classified as docs/ARCHITECTURE.md says", async (t) => {
  const table: [number, ErrcodeClass][] = [
    [0, "success"],
    [-1, "retryable"],
    [45011, "retryable"],
    [40001, "token"],
    [40014, "token"],
    [41001, "token"],
    [42001, "token"],
    [40003, "permanent"],
    [43004, "permanent"],
    [43019, "permanent"],
    [48002, "permanent"],
    [40036, "permanent"],
    [40037, "permanent"],
    [47001, "permanent"],
    [47003, "permanent"],
    [48001, "permanent"],
    [45009, "quota"],
  ];
  for (const [code, cls] of table) t.equal(classifyErrcode(code), cls, `${code} → ${cls}`);
});

t.test("wechat errcodes - unknown errcodes are retryable (client_msg_id makes a retry safe)", async (t) => {
  for (const code of [40164, 99999, -2, 1]) t.equal(classifyErrcode(code), ErrcodeClass.retryable, String(code));
});
