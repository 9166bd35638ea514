export { createDlqMonitor, DEFAULT_SETTINGS, type DlqMonitor, type DlqMonitorDeps, type DlqMonitorSettings } from "./service.js";
export { AlertRules, ALL_CHANNELS, toObservation, type AlertRulesOptions, type Observation, type RaisedAlert } from "./alerts.js";
export { AlertWebhook, WebhookError, webhookOrigin, type WebhookOptions } from "./webhook.js";
export { createAdvisoryHandler, parseAdvisory, type AdvisoryOutcome, type MaxDeliveriesAdvisory, type MonitorDeps } from "./monitor.js";
export { DlqMonitorConfigSchema, loadDlqMonitorConfig, settingsFromConfig, type DlqMonitorConfig } from "./config.js";
