export * from "./find-binary.js";
export * from "./launcher.js";
