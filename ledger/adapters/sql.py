"""The SQL text of the event store's append, feed and order reads (one place to read it)."""

from __future__ import annotations

# How every writer serializes its append: a transaction-scoped advisory lock on one fixed
# key, taken before the decision's read and held to commit, so ids are drawn and committed
# in one order (projections tailing by position never pass over a late commit) and the
# duplicate and closed-order checks see every earlier append. An advisory lock lives in
# PostgreSQL's lock manager, not on the table: VACUUM, ANALYZE, CREATE INDEX CONCURRENTLY
# and autovacuum (SHARE UPDATE EXCLUSIVE on the table) neither wait on it nor block it.
# ROW EXCLUSIVE, the lock the INSERT takes anyway, is taken up front only for a rolling
# upgrade: it conflicts with the EXCLUSIVE lock older processes still take (so an old
# and a new writer are serialized too) and not with SHARE UPDATE EXCLUSIVE. The
# consistency argument is in docs/explanation/architecture.md.
APPEND_LOCK_KEY = 0x70_70_61_70_70_65_6E_64  # "ppappend" as an advisory-lock key
SERIALIZE_APPENDS = (
    f"SELECT pg_advisory_xact_lock({APPEND_LOCK_KEY}); "
    "LOCK TABLE stored_events IN ROW EXCLUSIVE MODE"
)

# Everything the decision needs: which eventIds the tenant already has (with their
# content hash), which orders are closed, each line stream's version. The batch's keys
# arrive as one JSON document ({"e": [[tenant, eventId]...], "o": [[tenant, order]...],
# "s": [stream...]}): one orjson call instead of five arrays dumped element by element in
# Python (bench/append.py). Each key is looked up on its index (LATERAL ...
# OFFSET 0 keeps the lookup a nested index probe): as a plain join, a store whose statistics lag
# behind its growth (any fresh one) was hash-joined against a sequential scan of every recorded
# event, once per batch. The probe names only the eventId, which leads the
# primary key and no other index, and the tenant is checked outside it, so no plan made
# while the store was small can probe another index (migrations/0006_key_lookups.sql).
# Prepared by name on each writer connection (`prepare_append`).
READ_FOR_DECISION = """
WITH batch AS MATERIALIZED (SELECT $1::json AS j)
SELECT 'e' AS kind, k.t AS tenant, k.e AS ref, p.content_hash, p.position AS n
FROM (SELECT DISTINCT x->>0, x->>1 FROM batch, json_array_elements(j->'e') x) AS k(t, e),
LATERAL (SELECT tenant, content_hash, position FROM packing_events
         WHERE event_id = k.e OFFSET 0) p
WHERE p.tenant = k.t
UNION ALL
SELECT 'c', k.t, k.o, NULL, NULL
FROM (SELECT DISTINCT x->>0, x->>1 FROM batch, json_array_elements(j->'o') x) AS k(t, o)
WHERE EXISTS (SELECT FROM closed_orders WHERE tenant = k.t AND order_id = k.o OFFSET 0)
UNION ALL
SELECT 'v', NULL, s.id, NULL,
       greatest(
           (SELECT max(originator_version) FROM stored_events WHERE originator_id = s.id::uuid),
           (SELECT version FROM stream_baselines WHERE originator_id = s.id::uuid))
FROM batch, json_array_elements_text(j->'s') AS s(id)
"""

# The events (the library's table and columns) and their index rows in one statement;
# index rows join on (stream, version), so positions can never be mismatched. Each
# event's fields arrive as one object of a JSON array, read by json_to_recordset in one
# pass (an accessor per field would parse each element again); the stored states (the
# library's bytes, unchanged) arrive as one bytea, each event naming where its own
# starts and its size. Events are inserted in batch order. The same statement raises
# each tenant of the batch to its newest position in tenant_heads (one upsert per tenant
# per batch, not per event): the mark reads-your-writes wait for (projections/read.py),
# committed with the events it covers. Prepared by name, like the read.
INSERT_PACKING_EVENTS = """
WITH k AS MATERIALIZED (
    SELECT r.i, r.stream, r.version, r.topic, substring($2 FROM r.at FOR r.size) AS state,
           r.tenant, r.event_id, decode(r.content_hash, 'hex') AS content_hash,
           r.order_id, r.product_id, r.event_time
    FROM json_to_recordset($1::json) AS r(
        i int, stream uuid, version bigint, topic text, at int, size int, tenant text,
        event_id text, content_hash text, order_id text, product_id text,
        event_time timestamptz)
), new_events AS (
    INSERT INTO stored_events (originator_id, originator_version, topic, state)
    SELECT stream, version, topic, state FROM k ORDER BY i
    RETURNING originator_id, originator_version, notification_id
), indexed AS (
    INSERT INTO packing_events
        (tenant, event_id, content_hash, position, order_id, product_id, event_time)
    SELECT k.tenant, k.event_id, k.content_hash, e.notification_id, k.order_id,
           k.product_id, k.event_time
    FROM k
    JOIN new_events e ON e.originator_id = k.stream AND e.originator_version = k.version
    RETURNING tenant, event_id, position
), marks AS (
    INSERT INTO tenant_heads (tenant, position)
    SELECT tenant, max(position) FROM indexed GROUP BY tenant
    ON CONFLICT (tenant) DO UPDATE
    SET position = greatest(tenant_heads.position, excluded.position)
)
SELECT tenant, event_id, position FROM indexed
"""


# The last version of each of some streams; the append lock makes the read race-free. A
# stream whose older facts are archived goes on from its last archived version
# (stream_baselines) when none is retained.
NEXT_VERSIONS = (
    "SELECT s AS originator_id, greatest("
    "(SELECT max(originator_version) FROM stored_events WHERE originator_id = s), "
    "(SELECT version FROM stream_baselines WHERE originator_id = s)) AS v "
    "FROM unnest(%s::uuid[]) AS s"
)

# An order some of whose facts are archived, and the cut-off of the last archive that took
# some of them (`before_position` is that archive's upper bound): its archived facts are
# all before that cut-off, and a later archive that took none of them does not move it.
# The store's latest cut-off stands in should that archive's row be missing, so an order
# with archived facts is never taken for one without.
ARCHIVED_ORDER = (
    "SELECT coalesce("
    "(SELECT max(cutoff) FROM archives WHERE upper_position = o.before_position), "
    "(SELECT max(cutoff) FROM archives)) AS cutoff "
    "FROM archived_orders o WHERE o.order_id = %s AND o.tenant = %s"
)

# Raise a tenant's high-water mark to `position` (never lower it), in the transaction
# that records the tenant's events: the order commands' counterpart of the packing
# append's `marks` (INSERT_PACKING_EVENTS).
RAISE_TENANT_HEAD = (
    "INSERT INTO tenant_heads (tenant, position) VALUES (%s, %s) "
    "ON CONFLICT (tenant) DO UPDATE "
    "SET position = greatest(tenant_heads.position, excluded.position)"
)

# An order closed to writes, in the transaction that records its OrderCancelled.
CLOSE_ORDER = "INSERT INTO closed_orders (tenant, order_id, position) VALUES (%s, %s, %s)"

# One order's own stream, oldest first (OrderContext).
ORDER_STREAM = (
    "SELECT topic, state FROM stored_events WHERE originator_id = %s ORDER BY originator_version"
)

# Every fact of one order, its own stream's, its packing events and its corrections, in
# recording order (OrderContext): the order's status depends on all of them, interleaved
# as recorded, and a correction's signed deltas count as a scan's amounts do.
ORDER_FACTS = (
    "SELECT notification_id, topic, state FROM stored_events WHERE originator_id = %(s)s "
    "UNION ALL "
    "SELECT s.notification_id, s.topic, s.state FROM ("
    " SELECT position FROM packing_events WHERE tenant = %(t)s AND order_id = %(o)s"
    " UNION ALL"
    " SELECT position FROM corrections WHERE tenant = %(t)s AND order_id = %(o)s) p "
    "JOIN stored_events s ON s.notification_id = p.position ORDER BY 1"
)

# One stream's events, oldest first (an order line's scans and corrections).
STREAM = (
    "SELECT topic, state FROM stored_events WHERE originator_id = %s ORDER BY originator_version"
)

# Every fact but the packing events, indexed by tenant and order in the transaction
# that records it (the change feed and the history read it by position).
RECORD_ORDER_FACT = "INSERT INTO order_facts (tenant, position, order_id) VALUES (%s, %s, %s)"
RECORD_CORRECTION = (
    "INSERT INTO corrections (tenant, correction_id, order_id, position) VALUES (%s, %s, %s, %s)"
)
# A recorded correction by its id (idempotency).
# (The state is NULL when the correction's fact is archived: the id stays taken.)
FIND_CORRECTION = (
    "SELECT c.order_id, s.state FROM corrections c "
    "LEFT JOIN stored_events s ON s.notification_id = c.position "
    "WHERE c.correction_id = %s AND c.tenant = %s"
)

# Take the next holding area number of a place (a tenant's site and delivery date): one
# more than the place's last, and above every number an order of that place already holds
# in the view (one numbered by the previous release while both ran, say), so a number is
# never handed out twice within a site and date (docs/explanation/semantics.md).
NEXT_HOLDING_AREA = (
    "WITH held AS (SELECT coalesce(max(holding_area_number), 0) AS n FROM order_status "
    "WHERE tenant = %(t)s AND coalesce(site_code, '') = %(s)s "
    "AND coalesce(delivery_date::text, '') = %(d)s) "
    "INSERT INTO holding_area_places AS p (tenant, site_code, delivery_date, last_number) "
    "SELECT %(t)s, %(s)s, %(d)s, held.n + 1 FROM held "
    "ON CONFLICT (tenant, site_code, delivery_date) DO UPDATE "
    "SET last_number = greatest(p.last_number + 1, excluded.last_number) "
    "RETURNING last_number"
)

# Keep a tenant's sequence at or past a holding area number recorded otherwise (an imported
# HoldingAreaAssigned), so NEXT_HOLDING_AREA never hands it out again.
KEEP_HOLDING_AREA = (
    "INSERT INTO holding_area_sequences (tenant, last_number) VALUES (%s, %s) "
    "ON CONFLICT (tenant) DO UPDATE "
    "SET last_number = greatest(holding_area_sequences.last_number, excluded.last_number)"
)
