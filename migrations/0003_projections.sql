-- Read models. Each is kept by a projection runner that writes the view rows and its
-- position in notification_tracking in one transaction, so a crash never counts an
-- event twice or skips one. `pickpack projections rebuild` builds fresh copies
-- (CREATE TABLE ... LIKE) and swaps them in by renaming, in one transaction.

-- Projection "line_totals": the sums of an order line's packing events.
CREATE TABLE line_totals (
    tenant text NOT NULL,
    order_id text NOT NULL,
    product_id text NOT NULL,
    picked bigint NOT NULL DEFAULT 0,
    packed bigint NOT NULL DEFAULT 0,
    canceled bigint NOT NULL DEFAULT 0,
    unit text,
    events integer NOT NULL DEFAULT 0,
    first_event_at timestamptz,
    last_event_at timestamptz,
    PRIMARY KEY (tenant, order_id, product_id)
);

-- Projection "order_status": each order's packing state (ledger/status.py).
CREATE TABLE order_status (
    tenant text NOT NULL,
    order_id text NOT NULL,
    registered boolean NOT NULL DEFAULT false,
    document jsonb,
    packing_status text,
    active boolean NOT NULL DEFAULT false,
    assignees jsonb NOT NULL DEFAULT '[]',
    packaging jsonb NOT NULL DEFAULT '[]',
    holding_area_number integer,
    lines jsonb NOT NULL DEFAULT '{}',
    products_total bigint NOT NULL DEFAULT 0,
    products_packed bigint NOT NULL DEFAULT 0,
    products_canceled bigint NOT NULL DEFAULT 0,
    site_code text,
    delivery_date date,
    window_end timestamptz,
    PRIMARY KEY (tenant, order_id)
);
CREATE INDEX order_status_packlist_idx
    ON order_status (tenant, site_code, delivery_date, window_end, order_id);

-- A rebuild in progress: where it got to, so a killed rebuild resumes.
CREATE TABLE projection_rebuilds (
    projection text PRIMARY KEY,
    position bigint NOT NULL,
    head bigint NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
