-- The event store, exactly as eventsourcing 9.5's PostgresApplicationRecorder and
-- PostgresTrackingRecorder define it (the service runs the library with table
-- creation off, so the whole schema is readable here).

-- Every recorded fact. One stream per order line (packing events) and one per order
-- (order facts); notification_id is the global recording order that projections follow.
CREATE TABLE stored_events (
    originator_id uuid NOT NULL,
    originator_version bigint NOT NULL,
    topic text,
    state bytea,
    notification_id bigserial,
    PRIMARY KEY (originator_id, originator_version)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);

CREATE TYPE stored_event_uuid AS (
    originator_id uuid,
    originator_version bigint,
    topic text,
    state bytea
);

CREATE UNIQUE INDEX stored_events_notification_id_idx ON stored_events (notification_id ASC);

-- How far each projection has read (single-row tracking, the library's current layout;
-- the "__migration__" row tells the library the table is already in that layout).
CREATE TABLE notification_tracking (
    application_name text,
    notification_id bigint,
    PRIMARY KEY (application_name)
) WITH (
    autovacuum_enabled = true,
    autovacuum_vacuum_threshold = 100000000,
    autovacuum_vacuum_scale_factor = 0.5,
    autovacuum_analyze_threshold = 1000,
    autovacuum_analyze_scale_factor = 0.01
);
INSERT INTO notification_tracking VALUES ('__migration__', 1);
