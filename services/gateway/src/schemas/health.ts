import { Type } from "typebox";

export const HealthResponse = Type.Object({ status: Type.Literal("ok") }, { description: "The process is up" });

export const ReadyResponse = (description: string) =>
  Type.Object(
    {
      status: Type.Enum(["ready", "not_ready"]),
      checks: Type.Object({ nats: Type.Boolean(), buckets: Type.Boolean() }),
    },
    { description },
  );
