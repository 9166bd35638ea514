import { jsonSender } from "@notify/sim-http";

// The simulators' shared HTTP kit, with WeChat's content type: `application/json; encoding=utf-8`.
export { BodyTooLargeError, parseJson, readBody, sendText, splitUrl } from "@notify/sim-http";
export const sendJson = jsonSender("application/json; encoding=utf-8");
