-- A rebuild going on by slices of orders (projections/rebuild_slices.py): the head it
-- replays up to, how many slices the orders are cut into (0 until its first slice has
-- measured them) and the next slice to fold (-1: the first). Its position-order progress
-- row in projection_rebuilds is gone meanwhile, so a release that does not know slices
-- starts such a rebuild afresh rather than resuming into tables it cannot read.
-- A new table only: the previous release neither reads nor writes it.
CREATE TABLE projection_rebuild_slices (
    projection text PRIMARY KEY,
    head bigint NOT NULL,
    slices integer NOT NULL,
    next integer NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
