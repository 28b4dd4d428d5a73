-- The ledger's write-side indexes, written in the same transaction as the events they
-- describe (under the event store's table lock), so they are never behind the store.

-- One row per recorded packing event: enforces "eventId unique per tenant", keeps the
-- content hash that tells a scanner's retry (200) from a conflicting reuse (409), and
-- serves GET /events in (timestamp, recording order) without a projection lag.
CREATE TABLE packing_events (
    tenant text NOT NULL,
    event_id text NOT NULL,
    content_hash bytea NOT NULL,
    position bigint NOT NULL REFERENCES stored_events (notification_id),
    order_id text NOT NULL,
    product_id text NOT NULL,
    event_time timestamptz NOT NULL,
    PRIMARY KEY (tenant, event_id)
);
CREATE INDEX packing_events_feed_idx ON packing_events (tenant, event_time, position);
CREATE INDEX packing_events_order_idx ON packing_events (tenant, order_id);

-- Orders closed to writes: a row appears in the transaction that records OrderCancelled.
CREATE TABLE closed_orders (
    tenant text NOT NULL,
    order_id text NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tenant, order_id)
);

-- Holding area numbers: one sequence per tenant, advanced in the transaction that
-- assigns a number, so a number is never handed out twice.
CREATE TABLE holding_area_sequences (
    tenant text PRIMARY KEY,
    last_number integer NOT NULL
);
