export { Alerting, type AlertingOptions } from "./alerting.js";
export { AlertingEnv, alertingSettings, type AlertingConfig, type AlertingSettings } from "./config.js";
export { createProviderAlert, PROVIDER_ALERT_KINDS, PROVIDER_ALERT_WINDOW_MS, type ProviderAlert } from "./provider-alerts.js";
export { AlertRules, ALL_CHANNELS, toObservation, type AlertKind, type AlertRulesOptions, type Observation, type RaisedAlert } from "./rules.js";
export { AlertWebhook, WebhookError, webhookOrigin, type WebhookOptions } from "./webhook.js";
