-- The views' baseline at the archive point (docs/explanation/retention.md, section 6):
-- `pickpack archive` folds each partition's facts, before it drops them, into tables of
-- their own (`<view table>__baseline`, created LIKE the view's tables on first use) and
-- records here, with each flush, the last position folded. A rebuild then starts from a
-- copy of those rows and replays the store from that position instead of from 0
-- (projections/baseline.py, projections/rebuild.py).
-- New tables only: the previous release neither reads nor writes them. The baseline
-- tables are made here, not on first use, so that every store has them: `pickpack
-- database move` copies every table of the source into a target its migrations made.
-- A migration that changes a view's table changes its baseline table the same way.
CREATE TABLE line_totals__baseline (LIKE line_totals INCLUDING ALL);
CREATE TABLE order_status__baseline (LIKE order_status INCLUDING ALL);
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
