-- Recalculation: the transactional outbox of calculations requests to the Order Service,
-- the recalculation jobs that group them, and what was last delivered per order.
-- Outbox rows are inserted under the event store's table lock in the transaction that
-- read the totals they carry (OrderFinished's, or one chunk of a job's orders), so `seq`
-- order is the order in which the totals were read: per order, rows are sent in `seq`
-- order and the newest totals always arrive last.

CREATE TABLE recalculation_jobs (
    tenant text NOT NULL,
    job_id text NOT NULL,
    job_type text NOT NULL CHECK (job_type IN ('MANUAL', 'AUTOMATIC')),
    started_at timestamptz NOT NULL DEFAULT now(),
    -- Orders are queued in short transactions (scanners are not held up by a large job);
    -- true once the last of them is queued. Until then the job is IN_PROGRESS.
    complete boolean NOT NULL DEFAULT false,
    finished_at timestamptz,  -- set when the job is complete and no row is PENDING
    PRIMARY KEY (tenant, job_id)
);

-- One row per calculations request. body is NULL for a job's order that is refused
-- before sending (unknown or cancelled order): such a row is created as FAILURE.
CREATE TABLE recalculation_outbox (
    id text PRIMARY KEY,
    seq bigserial NOT NULL UNIQUE,
    tenant text NOT NULL,
    order_id text NOT NULL,
    job_id text,
    body jsonb,
    status text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'SUCCESS', 'FAILURE')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_message text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recalculation_outbox_due_idx
    ON recalculation_outbox (next_attempt_at, seq) WHERE status = 'PENDING';
CREATE INDEX recalculation_outbox_order_idx
    ON recalculation_outbox (tenant, order_id, seq) WHERE status = 'PENDING';
CREATE INDEX recalculation_outbox_job_idx ON recalculation_outbox (tenant, job_id, seq);

-- The entries last accepted by the Order Service per order: AUTOMATIC jobs pick the
-- orders whose current packed totals differ from these.
CREATE TABLE recalculation_sent (
    tenant text NOT NULL,
    order_id text NOT NULL,
    entries jsonb NOT NULL,
    outbox_id text NOT NULL,
    sent_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant, order_id)
);
