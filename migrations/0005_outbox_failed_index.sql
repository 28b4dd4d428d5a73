-- Recalculation requests that gave up (FAILURE), for the metrics scrape
-- (pickpack_outbox_requests{status="failed"}) and for an operator looking for them:
-- without it every scrape scanned the whole outbox, which grows by a row per
-- recalculation. Partial, so it holds only the rare failed rows.
CREATE INDEX recalculation_outbox_failed_idx
    ON recalculation_outbox (seq) WHERE status = 'FAILURE';
