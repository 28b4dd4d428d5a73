-- The views' baseline at the archive point (docs/explanation/retention.md, section 6):
-- `pickpack archive` folds each partition's facts, before it drops them, into tables of
-- their own (`<view table>__baseline`, created LIKE the view's tables on first use) and
-- records here, with each flush, the last position folded. A rebuild then starts from a
-- copy of those rows and replays the store from that position instead of from 0
-- (projections/baseline.py, projections/rebuild.py).
-- A new table only: the previous release neither reads nor writes it.
CREATE TABLE projection_baselines (
    projection text PRIMARY KEY,
    position bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- The position a rebuild's fresh tables started from (0: empty tables; otherwise the
-- baseline's position): a rebuild left behind resumes only while no archive has taken
-- facts after that position out of the store. The previous release's rebuilds insert
-- without it and start at 0: the default is what they mean.
ALTER TABLE projection_rebuilds ADD COLUMN started_from bigint NOT NULL DEFAULT 0;
