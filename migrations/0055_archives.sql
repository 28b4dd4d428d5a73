-- The partitions `pickpack archive` wrote to verified files and then dropped
-- (docs/explanation/retention.md). A row commits once the files are verified, before the
-- partition is detached: from then on its cut-off applies (a scan timestamped before the
-- latest cut-off is refused with 409, a read that would need archived facts says so).
-- `dropped_at` is set when the partition is gone. A new table only: the previous release
-- neither reads nor writes it.
CREATE TABLE archives (
    partition_name text PRIMARY KEY,
    lower_position bigint,
    upper_position bigint NOT NULL,
    cutoff timestamptz NOT NULL,
    facts bigint NOT NULL,
    manifest_sha256 text NOT NULL,
    location text NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now(),
    dropped_at timestamptz
);

-- What an archive leaves of the streams and orders whose facts it took out:
-- each stream's last archived version (a stream's next version is the greater of this and
-- its retained facts', so no version is ever recorded twice), and the orders with
-- archived facts (an order command on one is refused, naming the cut-off: its decisions
-- need the whole history; docs/explanation/retention.md, "What is not built").
CREATE TABLE stream_baselines (
    originator_id uuid PRIMARY KEY,
    version bigint NOT NULL
);
CREATE TABLE archived_orders (
    tenant text NOT NULL,
    order_id text NOT NULL,
    before_position bigint NOT NULL,
    PRIMARY KEY (order_id, tenant)
);
