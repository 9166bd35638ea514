import { runService } from "@notify/runtime";
import { dispatcherService } from "./spec.js";

// The only file that reads the environment, listens and handles signals (@notify/runtime).
await runService(dispatcherService());
