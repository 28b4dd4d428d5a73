-- Where `pickpack events import` got to, so an interrupted import resumes.
--
-- One row per (tenant imported into, source): the source is the SHA-256 of the file's first
-- line (an export's first fact: its position, recording instant and content), so the same
-- export or archive file, wherever it lies, finds its row again. `position` is the last
-- source position whose fact committed here: lines are read in position order and
-- recorded in batches, and this row is updated after each batch, so a resumed run skips
-- what is at or before it (a batch recorded but not yet noted is read again and counts as
-- "already there"). finished_at is set when the file was read to its end; the next run of
-- the same file then reads it all again (idempotency makes every fact count as "already
-- there"). counts: the running totals, so a resumed run's summary covers the whole import.
-- A new table only: the previous release neither reads nor writes it.
CREATE TABLE event_imports (
    tenant      text NOT NULL,
    source      text NOT NULL,
    position    bigint NOT NULL,
    lines       bigint NOT NULL,
    counts      jsonb NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (tenant, source)
);
