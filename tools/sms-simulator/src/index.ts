export { startSmsSimulator, type SmsSimulator } from "./simulator.js";
export { SmsFaultKind, type SmsFault, type SmsFaultSpec } from "./faults.js";
export { DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, DEFAULT_SDK_APP_ID, type SmsMessage, type StatusReport, type ReportPush, type SmsSimStats, type SmsSimulatorOptions } from "./state.js";
export { splitE164 } from "./reports.js";
