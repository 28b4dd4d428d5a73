-- The order's story: every fact of a tenant readable by position (the change feed), of
-- an order in commit order (its history), and corrections findable by their id.
--
-- Packing events are already indexed per tenant in packing_events; this index reads them
-- by position, the order they committed in (the feed: "after position P").
CREATE INDEX packing_events_position_idx ON packing_events (tenant, position);

-- Every other fact (the order's own stream, and corrections on its lines), one row per
-- stored event, written in the transaction that records it, under the same write lock.
CREATE TABLE order_facts (
    tenant text NOT NULL,
    position bigint NOT NULL REFERENCES stored_events (notification_id),
    order_id text NOT NULL,
    PRIMARY KEY (tenant, position)
);
CREATE INDEX order_facts_order_idx ON order_facts (tenant, order_id, position);
ALTER TABLE order_facts ALTER COLUMN tenant SET (n_distinct = 1);

-- Corrections by their id: idempotency (same content 200, other content 409).
CREATE TABLE corrections (
    tenant text NOT NULL,
    correction_id text NOT NULL,
    order_id text NOT NULL,
    position bigint NOT NULL REFERENCES stored_events (notification_id),
    PRIMARY KEY (correction_id, tenant)
);
CREATE INDEX corrections_order_idx ON corrections (tenant, order_id, position);

-- The facts recorded before this migration: every stored event that is not a packing
-- event is an order fact, and its state (plain JSON) names its tenant and order.
INSERT INTO order_facts (tenant, position, order_id)
SELECT s.j->>'tenant', s.notification_id, s.j->>'order_id'
FROM (
    SELECT notification_id, convert_from(state, 'UTF8')::jsonb AS j
    FROM stored_events
    WHERE topic LIKE 'ledger.events:%'
      AND topic <> 'ledger.events:PackingEventRecorded'
) AS s
WHERE s.j->>'tenant' IS NOT NULL AND s.j->>'order_id' IS NOT NULL;

-- The HTTP status of a calculations request's last attempt (NULL: none came back, or
-- not sent yet), shown with the delivery in the order's history.
ALTER TABLE recalculation_outbox ADD COLUMN last_status_code integer;
