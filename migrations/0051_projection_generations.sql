-- A counter per projection, raised by every rebuild that rewrites some of its rows in
-- place (`pickpack projections rebuild --tenant T`: one tenant's rows deleted and written
-- again, in the live tables). A live runner keeps order states in memory between its steps
-- while nobody else writes the view; it compares this counter, with the tables' OIDs and
-- its position, to tell (projections/runner.py, `Kept`). A whole rebuild swaps new tables
-- in (new OIDs) and needs no counter. No row: generation 0.
-- A new table only: the previous release neither reads nor writes it.
CREATE TABLE projection_generations (
    projection text PRIMARY KEY,
    generation bigint NOT NULL
);
