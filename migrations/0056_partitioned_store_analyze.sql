-- Statistics for the partitioned tables themselves (0054). Autovacuum analyses each
-- partition but never a partitioned table, whose statistics the planner uses for joins
-- and groupings over all its partitions: gathered once here (a sample, under SHARE UPDATE
-- EXCLUSIVE: appends go on), and again by the partition keeper whenever it makes a
-- partition (ledger/adapters/partitions.py).
ANALYZE stored_events;
ANALYZE packing_events;
