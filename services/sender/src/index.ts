export * from "./channels/channel.js";
export * from "./channels/wechat.js";
export * from "./config.js";
export * from "./send.js";
export * from "./service.js";
export * from "./channels/sms.js";
export * from "./quota-governor.js";
