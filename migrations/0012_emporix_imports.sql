-- Where `pickpack emporix import-events` got to, so an interrupted import resumes.
--
-- One row per (tenant, source URL, starting timestamp): the pages of Emporix's event feed
-- are counted from that timestamp, so a resume must ask with the same one and the same
-- page size. next_page is the first page not yet committed here (pages are appended
-- whole, then this row is updated). finished_at is set when the feed ran out; the next
-- run for the same key then starts again from page 1 (a full pass: idempotency makes
-- every event already recorded count as "already there"). The counts are the running
-- totals of the import so far, so a resumed run's summary covers the whole import.
CREATE TABLE emporix_imports (
    tenant        text NOT NULL,
    source        text NOT NULL,
    since         text NOT NULL,
    page_size     integer NOT NULL,
    next_page     integer NOT NULL,
    counts        jsonb NOT NULL,
    last_event_time text,
    started_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    finished_at   timestamptz,
    PRIMARY KEY (tenant, source, since)
);
