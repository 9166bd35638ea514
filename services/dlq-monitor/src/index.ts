export { createDlqMonitor, type DlqMonitor, type DlqMonitorDeps, type DlqMonitorSettings } from "./service.js";
export { createAdvisoryHandler, parseAdvisory, type AdvisoryOutcome, type MaxDeliveriesAdvisory, type MonitorDeps } from "./monitor.js";
export { DlqMonitorConfigSchema, loadDlqMonitorConfig, settingsFromConfig, type DlqMonitorConfig } from "./config.js";
