import { Type } from "typebox";

export const HealthResponse = Type.Object({ status: Type.Literal("ok") }, { description: "The process is up" });

export const ReadyResponse = (description: string) =>
  Type.Object(
    {
      status: Type.Enum(["ready", "not_ready"]),
      checks: Type.Object({
        nats: Type.Boolean(),
        buckets: Type.Boolean(),
        sendlog: Type.Object(
          {
            db: Type.Union([Type.Boolean(), Type.Literal("off")]),
            problem: Type.Optional(Type.String()),
            projector: Type.Optional(Type.Object({}, { additionalProperties: true, description: "The embedded projector: streams with committed/last/lag" })),
          },
          { description: "The SQL send log behind the search routes (informational: it does not decide readiness)" },
        ),
      }),
    },
    { description },
  );
