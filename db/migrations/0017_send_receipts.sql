-- Delivery receipts (WeChat TEMPLATESENDJOBFINISH, SMS status reports) move a send past
-- `success` to delivered / blocked / undelivered. The status and its history already
-- follow the record; these columns keep what the provider reported, for filters and
-- the send search without reading the record's jsonb.
ALTER TABLE notification_events ADD COLUMN receipt_status text;
ALTER TABLE notification_events ADD COLUMN receipt_at timestamptz;

-- Rows projected before this migration: read the same fields from the stored record
-- (a value that is not an ISO time stays NULL rather than failing the migration).
UPDATE notification_events SET
  receipt_status = record->>'receipt_status',
  receipt_at = CASE WHEN record->>'receipt_at' ~ '^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$'
                    THEN (record->>'receipt_at')::timestamptz END
WHERE record ? 'receipt_status' OR record ? 'receipt_at';
