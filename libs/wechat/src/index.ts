export { WeChatClient, createWeChatClient, WECHAT_API_BASE, type SendResult, type SendFailureKind, type WeChatClientOptions, type WeChatSettings } from "./client.js";
export { ErrcodeClass, WeChatErrcode, classifyErrcode } from "./errcodes.js";
export { TokenUnavailableError } from "./errors.js";
export type { CallCode, OnCall, WeChatEndpoint } from "./http.js";
export { AccessTokens, LocalTokenBackend, type TokenBackend } from "./access-tokens.js";
export { KvTokenBackend } from "./kv-token-backend.js";
export type { TokenRecord, StoredTokenValue, TokenRequest } from "./token-record.js";
