export { WeChatClient, createWeChatClient, WECHAT_API_BASE, TOKEN_REFRESH_BUDGET_CODE, type QuotaView, type SendResult, type SendFailureKind, type WeChatClientOptions, type WeChatSettings } from "./client.js";
export { ErrcodeClass, WeChatErrcode, classifyErrcode, isAccountConfigErrcode } from "./errcodes.js";
export { TokenUnavailableError } from "./errors.js";
export type { CallCode, OnCall, WeChatEndpoint } from "./http.js";
export { AccessTokens, LocalTokenBackend, type TokenBackend } from "./access-tokens.js";
export { KvTokenBackend } from "./kv-token-backend.js";
export { DEFAULT_REFRESH_BUDGET, KvRefreshBudget, MemoryRefreshBudget, RefreshBudgetSpentError, decide as decideRefreshBudget, msUntilWeChatDay, wechatDay, type BudgetDecision, type BudgetState, type RefreshBudget, type RefreshBudgetLimits } from "./refresh-budget.js";
export type { TokenRecord, StoredTokenValue, TokenRequest } from "./token-record.js";
export { CallbackDecryptError, aesKeyFrom, decryptMessage, encryptMessage, sha1Signature, signatureMatches } from "./callback.js";
