-- The counting rules: line totals kept per unit, and no saas-token in the event store.
--
-- 1. line_totals gets a unit dimension: amounts in unlike units are never added, so a
--    line has one row per unit. The old rows summed every unit into one and cannot be
--    split again, and order_status's stored `lines` and figures follow the old rules
--    (every entry of a product counted the whole line). Both views are emptied and their
--    tracked positions dropped: the projection runner of the next `pickpack serve`
--    replays the store into them from the start (or run `pickpack projections rebuild
--    --all` first; docs/operations.md, "Upgrading to the counting rules"). The event
--    store holds every fact, so nothing is lost.
TRUNCATE line_totals;
DROP TABLE IF EXISTS line_totals__rebuild, order_status__rebuild;
DELETE FROM projection_rebuilds WHERE projection IN ('line_totals', 'order_status');
ALTER TABLE line_totals ALTER COLUMN unit SET NOT NULL,
    DROP CONSTRAINT line_totals_pkey,
    ADD CONSTRAINT line_totals_pkey PRIMARY KEY (tenant, order_id, product_id, unit);
TRUNCATE order_status;
DELETE FROM notification_tracking WHERE application_name IN ('line_totals', 'order_status');

-- 2. Secrets are not history. New events keep at most a keyed fingerprint of the
--    saas-token (HMAC-SHA256 with the key below, which the service reads at start-up:
--    every replica and restart uses the same one). The key is 256 random bits from
--    PostgreSQL's strong random source (gen_random_uuid is core since PostgreSQL 13).
CREATE TABLE ledger_keys (
    name text PRIMARY KEY,
    key bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO ledger_keys (name, key) VALUES (
    'saas_token_fingerprint',
    decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')
);

--    Events already stored (scans, and corrections where migration 0011 ran first) lose
--    the token: saas_token becomes null in their state (JSON
--    in the library's format; the field stays, so every event still decodes into its
--    class). The old tokens cannot be fingerprinted here without the key in SQL code.
UPDATE stored_events
SET state = convert_to(
    jsonb_set(convert_from(state, 'UTF8')::jsonb, '{saas_token}', 'null')::text, 'UTF8')
WHERE topic IN ('ledger.events:PackingEventRecorded', 'ledger.events:CorrectionRecorded')
  AND convert_from(state, 'UTF8')::jsonb ->> 'saas_token' IS NOT NULL;

-- 3. Interrupted jobs resume at start-up: a job keeps the orders it is to queue, so a
--    process that dies while queueing them leaves enough for the next start to finish
--    the job (ledger/services/recalculation.py, resume_jobs). Jobs from before this
--    migration have none (NULL): an AUTOMATIC one takes the open orders again, a MANUAL
--    one is completed with the orders it had queued.
ALTER TABLE recalculation_jobs ADD COLUMN order_ids jsonb;
