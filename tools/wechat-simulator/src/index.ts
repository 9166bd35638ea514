export { startSimulator, type Simulator } from "./simulator.js";
export { DEFAULT_APP_ID, DEFAULT_APP_SECRET, type SimStats, type SimulatorOptions } from "./state.js";
export { FaultKind, FaultSpecError, FaultTarget, parseFaultSpec, type Fault, type FaultSpec } from "./faults.js";
export type { SimMessage } from "./messages.js";
export { Errcode } from "./errcodes.js";
export { CONTROL_PREFIX } from "./control-api.js";
export { SimulatorControl, SimulatorControlError, type MessageQuery } from "./control-client.js";
export { ReceiptStatus, type ReceiptPush, type ReceiptTarget } from "./receipts.js";
export { beijingDay, nextBeijingMidnight, type QuotaView } from "./limits.js";
