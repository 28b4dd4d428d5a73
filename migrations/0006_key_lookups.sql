-- Key lookups the planner cannot take for anything else, however small the tables.
--
-- The append looks up each eventId of a batch, and the order_status projection each
-- order of a step, with "tenant = $1 AND <id> = $2". While a table is a few pages the
-- planner estimates one row for every index led by tenant, so (tenant, order_id) or
-- (tenant, site_code, ...) tied with the primary key and was sometimes taken, with a
-- filter on the id: every event (or order) of the tenant read per lookup. A prepared
-- statement keeps that plan until the next ANALYZE, so appends slowed as the store grew
-- (3.6 ms per 16-event batch after 1,600 events, 26 ms after 12,800: docs/BENCHMARKS.md).
--
-- 1. The keys lead with the id, and the hot lookups name only the id inside the probe
--    (the tenant is checked outside it): no other index can serve them.
ALTER TABLE packing_events DROP CONSTRAINT packing_events_pkey,
    ADD CONSTRAINT packing_events_pkey PRIMARY KEY (event_id, tenant);
ALTER TABLE order_status DROP CONSTRAINT order_status_pkey,
    ADD CONSTRAINT order_status_pkey PRIMARY KEY (order_id, tenant);

-- 2. Tenants are few. An ANALYZE that samples a handful of rows with distinct tenants
--    records the column as unique, and "tenant = $1" then looks as selective as a whole
--    key to every other query. A positive n_distinct is a count that ANALYZE uses
--    instead of its estimate; one is what a single-warehouse installation has, and it
--    overstates a multi-tenant one only in the planner's favour (a tenant's rows look
--    many, so a lookup prefers the index that matches more of its key).
--    projections/rebuild.py copies the setting to the tables a rebuild creates.
ALTER TABLE packing_events ALTER COLUMN tenant SET (n_distinct = 1);
ALTER TABLE order_status ALTER COLUMN tenant SET (n_distinct = 1);

-- An installation that already holds events gets statistics with the setting now. An
-- empty table is left unanalyzed: the planner takes a never-analyzed table for ten pages
-- but believes an analyzed empty one.
DO $$
BEGIN
    IF EXISTS (SELECT FROM packing_events) THEN
        ANALYZE packing_events;
    END IF;
    IF EXISTS (SELECT FROM order_status) THEN
        ANALYZE order_status;
    END IF;
END
$$;
