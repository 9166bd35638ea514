-- The send log's SQL read model. JetStream KV stays the system of record; the projector
-- (services/projector) keeps these tables in step with the buckets. Every row carries the
-- KV revision (the bucket stream's sequence) it came from, so a redelivered or replayed
-- message never duplicates or regresses a row. The mapping is in db/README.md.

-- One row per send_id: the current record of KV bucket notification_events.
CREATE TABLE notification_events (
  -- COLLATE "C": keyset pages order by (created_at, send_id) the same way on every server.
  send_id      text COLLATE "C" PRIMARY KEY,
  revision     bigint      NOT NULL,
  event_id     text        NOT NULL,
  event        text        NOT NULL,
  order_id     text,
  ticket_id    text,
  channel      text        NOT NULL,
  language     text,
  template_id  text,
  openid       text,
  status       text        NOT NULL,
  attempts     integer     NOT NULL DEFAULT 0,
  last_error   text,
  reason       text,
  occurred_at  timestamptz,
  sent_at      timestamptz,
  -- updated_at of the first revision seen for this send_id (when the send was first recorded).
  created_at   timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL,
  -- true once the key was deleted or purged in KV (kept so an older replay cannot resurrect it).
  deleted      boolean     NOT NULL DEFAULT false,
  record       jsonb       NOT NULL
);

-- The operator's filters, each with the keyset order (created_at DESC, send_id DESC).
CREATE INDEX notification_events_created_idx ON notification_events (created_at DESC, send_id DESC);
CREATE INDEX notification_events_updated_idx ON notification_events (updated_at DESC, send_id DESC);
CREATE INDEX notification_events_status_idx ON notification_events (status, created_at DESC, send_id DESC);
CREATE INDEX notification_events_event_idx ON notification_events (event, created_at DESC, send_id DESC);
CREATE INDEX notification_events_order_idx ON notification_events (order_id, created_at DESC, send_id DESC);
CREATE INDEX notification_events_ticket_idx ON notification_events (ticket_id, created_at DESC, send_id DESC) WHERE ticket_id IS NOT NULL;
CREATE INDEX notification_events_openid_idx ON notification_events (openid, created_at DESC, send_id DESC) WHERE openid IS NOT NULL;

-- Every revision of every send record: the status history (KV history of send_id).
CREATE TABLE notification_event_history (
  send_id     text        NOT NULL,
  revision    bigint      NOT NULL,
  operation   text        NOT NULL CHECK (operation IN ('PUT', 'DEL', 'PURGE')),
  status      text,
  attempts    integer,
  reason      text,
  last_error  text,
  updated_at  timestamptz,
  record      jsonb,
  PRIMARY KEY (send_id, revision)
);

-- Every revision of every template (KV bucket notification_templates), with who changed it.
CREATE TABLE notification_templates (
  key          text        NOT NULL,
  revision     bigint      NOT NULL,
  operation    text        NOT NULL CHECK (operation IN ('PUT', 'DEL', 'PURGE')),
  event        text        NOT NULL,
  channel      text        NOT NULL,
  language     text        NOT NULL,
  template_id  text,
  enabled      boolean,
  -- The gateway's id of the API key that wrote it (never the key itself); null for deletes.
  changed_by   text,
  changed_at   timestamptz NOT NULL,
  template     jsonb,
  PRIMARY KEY (key, revision)
);
CREATE INDEX notification_templates_changed_idx ON notification_templates (changed_at DESC);

-- The templates as they stand: the newest revision of each key, unless it was deleted.
CREATE VIEW notification_templates_current AS
  SELECT * FROM (
    SELECT DISTINCT ON (key) * FROM notification_templates ORDER BY key, revision DESC
  ) latest
  WHERE operation = 'PUT';

-- The idempotency claims (KV bucket notification_locks): which business key is claimed by
-- which send. KV expires a claim after LOCK_TTL_MS without a delete marker, so expires_at
-- (claim time + the bucket's TTL at projection time) says when it stopped counting.
CREATE TABLE notification_locks (
  lock_key    text PRIMARY KEY,
  revision    bigint      NOT NULL,
  send_id     text,
  event_id    text,
  claimed_at  timestamptz,
  expires_at  timestamptz,
  deleted     boolean     NOT NULL DEFAULT false
);
CREATE INDEX notification_locks_send_idx ON notification_locks (send_id);

-- Where the projector stands in each bucket's stream: the last stream sequence whose
-- effects are committed here (written in the same transaction as the rows).
CREATE TABLE projector_offsets (
  stream      text PRIMARY KEY,
  seq         bigint      NOT NULL,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
