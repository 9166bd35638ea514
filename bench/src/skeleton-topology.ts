import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, type ConsumerConfig, type StreamConfig } from "@nats-io/jetstream";
import { nanos } from "@nats-io/transport-node";

/**
 * The bare two-stage skeleton's names and settings: the same kinds of streams, buckets
 * and consumer settings as the real topology (libs/nats topology.ts), under other names.
 */
export const Skel = {
  events: "BENCH_EVENTS",
  jobs: "BENCH_JOBS",
  sent: "BENCH_SENT",
  eventSubject: "bench.events.order.paid",
  jobSubject: "bench.jobs.wechat",
  sentSubject: "bench.sent.wechat",
  locks: "bench_locks",
  records: "bench_records",
  stage1: "bench-stage1",
  stage2: "bench-stage2",
} as const;

const SECOND = 1000;
const base = { storage: StorageType.File, num_replicas: 1, discard: DiscardPolicy.Old };

export const skeletonStreams: Partial<StreamConfig>[] = [
  { ...base, name: Skel.events, subjects: ["bench.events.>"], retention: RetentionPolicy.Limits, duplicate_window: nanos(2 * 60 * SECOND), max_age: nanos(7 * 24 * 3600 * SECOND) },
  { ...base, name: Skel.jobs, subjects: ["bench.jobs.*"], retention: RetentionPolicy.Workqueue, duplicate_window: nanos(2 * 60 * SECOND) },
  { ...base, name: Skel.sent, subjects: ["bench.sent.>"], retention: RetentionPolicy.Limits, max_age: nanos(7 * 24 * 3600 * SECOND) },
];

export const skeletonBuckets = [
  { bucket: Skel.locks, history: 1, ttl: 30 * 24 * 3600 * SECOND },
  { bucket: Skel.records, history: 32, ttl: 0 },
];

export const skeletonConsumers: { stream: string; config: Partial<ConsumerConfig> }[] = [
  { stream: Skel.events, config: { durable_name: Skel.stage1, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All, ack_wait: nanos(30 * SECOND), max_deliver: 10, max_ack_pending: 2000 } },
  {
    stream: Skel.jobs,
    config: {
      durable_name: Skel.stage2,
      filter_subject: Skel.jobSubject,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      max_deliver: 5,
      ack_wait: nanos(15 * SECOND),
      max_ack_pending: 1000,
    },
  },
];

/** The BullMQ peer's queues and its stream of sent facts. */
export const PeerNames = { events: "bench-events", sends: "bench-sends", sent: "bench:sent" } as const;
