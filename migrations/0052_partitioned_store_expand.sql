-- The event store partitioned by position, step 1 of 3 (docs/explanation/retention.md,
-- "Converting an existing store without a long lock"): what the switch (0054) needs, each
-- statement holding its table's lock for milliseconds, never for a scan of the table.
-- Expand: the previous release keeps working against every step.
-- rollable despite DROP: the three foreign keys into stored_events are dropped. The
-- previous release never relied on them (each row is written in the transaction that
-- writes its event, under the append lock), and they cannot stay: a foreign key pins the
-- referenced table by its OID, so it would refuse every position of a new partition and
-- forbid dropping an archived one (tests/store/test_partitioned_store.py runs the
-- previous release across the conversion).
-- Appends wait on the append lock (taken first, so they queue there and not behind this
-- transaction's table locks); the lock_timeout keeps a long read from making everything
-- queue behind it: the migration runner tries again (bench/maintenance.py --convert
-- measured scans stalled up to about half a second with 500 ms here).
SET LOCAL lock_timeout = '100ms';
SELECT pg_advisory_xact_lock(8102082865189449316);  -- the append lock (ledger/adapters/sql.py)

ALTER TABLE packing_events DROP CONSTRAINT IF EXISTS packing_events_position_fkey;
ALTER TABLE order_facts DROP CONSTRAINT IF EXISTS order_facts_position_fkey;
ALTER TABLE corrections DROP CONSTRAINT IF EXISTS corrections_position_fkey;

-- How big each partition is (positions per partition; about 25 GB of store at 50
-- million) and where the first one, the table as it was, ends. `pickpack store
-- partitions --size N` changes the size of the partitions created from then on.
CREATE TABLE event_partitioning (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    size bigint NOT NULL CHECK (size > 0),
    first_bound bigint NOT NULL
);

-- The first partition's bound: at least a partition's size above the head, so the appends
-- that go on until the switch (0054) never reach it (the CHECK below would refuse them).
INSERT INTO event_partitioning (size, first_bound)
SELECT 50000000, ((coalesce(max(notification_id), 0) + 50000000 + 49999999) / 50000000) * 50000000
FROM stored_events;

-- The range check that lets the switch attach each table as its first partition without
-- scanning it: added NOT VALID (no scan, a brief lock), validated by 0053.
DO $$
DECLARE
    bound bigint := (SELECT first_bound FROM event_partitioning);
BEGIN
    EXECUTE format('ALTER TABLE stored_events ADD CONSTRAINT stored_events_p0_range '
                   'CHECK (notification_id < %s) NOT VALID', bound);
    EXECUTE format('ALTER TABLE packing_events ADD CONSTRAINT packing_events_p0_range '
                   'CHECK (position < %s) NOT VALID', bound);
END
$$;
