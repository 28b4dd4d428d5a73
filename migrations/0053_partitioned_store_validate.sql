-- The event store partitioned by position, step 2 of 3: the range checks of 0052
-- validated. Each VALIDATE scans its table under SHARE UPDATE EXCLUSIVE, the lock VACUUM
-- takes: appends and reads go on while it reads (bench/maintenance.py --convert measures
-- the scans' latency meanwhile). Expand: nothing changes for the previous release.
ALTER TABLE stored_events VALIDATE CONSTRAINT stored_events_p0_range;
ALTER TABLE packing_events VALIDATE CONSTRAINT packing_events_p0_range;
