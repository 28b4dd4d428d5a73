-- The event store partitioned by position, step 3 of 3: the switch, one short transaction.
-- stored_events and packing_events become tables partitioned by range of position, and
-- the tables as they were become their first partitions, attached without a scan (the
-- range checks validated by 0053 prove the range). Nothing is copied, no index is built:
-- each partitioned index takes over the first partition's index of the same columns.
--
-- Appends wait on the append lock (taken first, so they queue there and not behind this
-- transaction's table locks) for the milliseconds the switch takes; the lock_timeout keeps
-- a long read from making everything queue behind it: the migration runner tries again.
--
-- rollable despite RENAME: each table is renamed to its first partition's name and a
-- partitioned table of the same name and the same columns takes its place. The previous
-- release names only the tables and their columns, and PostgreSQL analyses a statement
-- again after DDL on a table it names, so its processes find the new parent by name; its
-- appends (the library's INSERT ... RETURNING, the ledger's statements, its EXCLUSIVE
-- table lock) all work on a partitioned table (tests/store/test_partitioned_store.py runs
-- the previous release's service across the conversion). The per-partition keys that
-- replace the global ones are explained in docs/explanation/retention.md.
SET LOCAL lock_timeout = '100ms';
SELECT pg_advisory_xact_lock(8102082865189449316);  -- the append lock (ledger/adapters/sql.py)
LOCK TABLE stored_events, packing_events IN ACCESS EXCLUSIVE MODE;

DO $$
DECLARE
    bound bigint := (SELECT first_bound FROM event_partitioning);
BEGIN
    ALTER TABLE stored_events RENAME TO stored_events_p0;
    ALTER INDEX stored_events_notification_id_idx RENAME TO stored_events_p0_notification_id_idx;
    CREATE TABLE stored_events (
        originator_id uuid NOT NULL,
        originator_version bigint NOT NULL,
        topic text,
        state bytea,
        notification_id bigint NOT NULL DEFAULT nextval('stored_events_notification_id_seq')
    ) PARTITION BY RANGE (notification_id);
    -- The sequence belongs to the store, not to its first partition: dropping that
    -- partition once archived must leave the positions' sequence as it is.
    ALTER SEQUENCE stored_events_notification_id_seq OWNED BY stored_events.notification_id;
    EXECUTE format('ALTER TABLE stored_events ATTACH PARTITION stored_events_p0 '
                   'FOR VALUES FROM (MINVALUE) TO (%s)', bound);
    CREATE UNIQUE INDEX stored_events_notification_id_idx ON stored_events (notification_id);

    ALTER TABLE packing_events RENAME TO packing_events_p0;
    ALTER INDEX packing_events_feed_idx RENAME TO packing_events_p0_feed_idx;
    ALTER INDEX packing_events_order_idx RENAME TO packing_events_p0_order_idx;
    ALTER INDEX packing_events_position_idx RENAME TO packing_events_p0_position_idx;
    CREATE TABLE packing_events (
        tenant text NOT NULL,
        event_id text NOT NULL,
        content_hash bytea NOT NULL,
        position bigint NOT NULL,
        order_id text NOT NULL,
        product_id text NOT NULL,
        event_time timestamptz NOT NULL
    ) PARTITION BY RANGE (position);
    ALTER TABLE packing_events ALTER COLUMN tenant SET (n_distinct = 1);
    EXECUTE format('ALTER TABLE packing_events ATTACH PARTITION packing_events_p0 '
                   'FOR VALUES FROM (MINVALUE) TO (%s)', bound);
    CREATE INDEX packing_events_feed_idx ON packing_events (tenant, event_time, position);
    CREATE INDEX packing_events_order_idx ON packing_events (tenant, order_id);
    CREATE INDEX packing_events_position_idx ON packing_events (tenant, position);
END
$$;
