export * from "./db.js";
export * from "./migrate.js";
export * from "./project.js";
export * from "./projector.js";
export * from "./queries.js";
