-- Each tenant's high-water mark: the position (notification id) of the tenant's latest
-- recorded event. Every writer raises it in the same transaction as the events it
-- appends (the packing append inside its insert statement, order commands in their
-- transaction), so a read that must see its caller's acknowledged writes waits for the
-- views to pass its own tenant's mark rather than the whole store's head, which holds
-- every other tenant's events too (projections/read.py, docs/architecture.md).
CREATE TABLE tenant_heads (
    tenant text PRIMARY KEY,
    position bigint NOT NULL
);

-- An installation that already holds events: each tenant's mark from what is recorded,
-- under the writers' lock so no append commits between the reads and this
-- transaction's commit. Packing events name their tenant in the ledger's index; order
-- facts live in per-order streams whose ids are hashes, so their tenant is read once,
-- here, from the stored state's "tenant" field (every order fact carries it).
LOCK TABLE stored_events IN EXCLUSIVE MODE;

INSERT INTO tenant_heads (tenant, position)
SELECT tenant, max(position) FROM (
    SELECT tenant, max(position) AS position FROM packing_events GROUP BY tenant
    UNION ALL
    SELECT convert_from(state, 'UTF8')::json ->> 'tenant', max(notification_id)
    FROM stored_events
    WHERE topic <> 'ledger.events:PackingEventRecorded'
    GROUP BY 1
) AS marks
WHERE tenant IS NOT NULL
GROUP BY tenant;
