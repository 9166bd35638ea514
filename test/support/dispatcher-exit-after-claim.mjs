// Test seam (not a service): the dispatcher as its main.ts runs it, with a fault that exits
// the process right after a business key is claimed and before its job is published, so the
// chaos suite can prove the redelivery rule. Lives here so production config has no fault switch.
import { runService } from "@notify/runtime";
import { dispatcherService } from "../../services/dispatcher/dist/spec.js";

await runService(
  dispatcherService({
    afterClaim: () => {
      process.stderr.write("fault hook: exiting between claim and publish\n");
      process.exit(137);
    },
  }),
);
