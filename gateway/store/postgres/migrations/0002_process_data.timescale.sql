-- process_data as a TimescaleDB hypertable (1-day chunks), compressed segment-by tag after
-- the hot window, with continuous aggregates process_data_hourly / process_data_daily.
-- Compression, retention and refresh policies depend on the configured RetentionPolicy and
-- are (re)applied by migrate() on every run (retention.py), not here.

-- See 0002_process_data.plain.sql for the choice of key and foreign keys.
CREATE TABLE process_data (
    time       timestamptz NOT NULL,
    gateway_id text NOT NULL,
    tag_id     varchar(50) NOT NULL REFERENCES process_tags (tag_id),
    value      double precision,
    quality    smallint NOT NULL CHECK (quality IN (192, 128, 64)),
    reason     smallint NOT NULL DEFAULT 0 CHECK (reason >= 0),
    PRIMARY KEY (tag_id, time, gateway_id)
);
SELECT create_hypertable('process_data', 'time', chunk_time_interval => INTERVAL '1 day',
                         if_not_exists => true);
CREATE INDEX process_data_not_good_idx ON process_data (time DESC) WHERE quality < 192;
ALTER TABLE process_data SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'tag_id, gateway_id',
    timescaledb.compress_orderby = 'time DESC'
);

-- Same columns as the plain back-end's rollup tables. Only good values are aggregated.
CREATE MATERIALIZED VIEW process_data_hourly
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', time) AS bucket, gateway_id, tag_id,
       min(value) AS value_min, max(value) AS value_max, avg(value) AS value_avg,
       sum(value) AS value_sum, last(value, time) AS value_last, max(time) AS last_time,
       count(*) AS samples
FROM process_data
WHERE quality = 192 AND value IS NOT NULL
GROUP BY time_bucket(INTERVAL '1 hour', time), gateway_id, tag_id
WITH NO DATA;

CREATE MATERIALIZED VIEW process_data_daily
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', time) AS bucket, gateway_id, tag_id,
       min(value) AS value_min, max(value) AS value_max, avg(value) AS value_avg,
       sum(value) AS value_sum, last(value, time) AS value_last, max(time) AS last_time,
       count(*) AS samples
FROM process_data
WHERE quality = 192 AND value IS NOT NULL
GROUP BY time_bucket(INTERVAL '1 day', time), gateway_id, tag_id
WITH NO DATA;

CREATE TABLE process_data_latest (
    tag_id     varchar(50) NOT NULL REFERENCES process_tags (tag_id),
    gateway_id text NOT NULL,
    time       timestamptz NOT NULL,
    value      double precision,
    quality    smallint NOT NULL CHECK (quality IN (192, 128, 64)),
    reason     smallint NOT NULL DEFAULT 0,
    PRIMARY KEY (tag_id, gateway_id)
);

-- Policies are TimescaleDB jobs; the gateway's periodic maintenance has nothing to do.
CREATE FUNCTION process_data_maintain(p_now timestamptz DEFAULT now())
RETURNS TABLE (partitions_created integer, partitions_dropped integer, rollup_rows_deleted bigint)
LANGUAGE sql AS $$ SELECT 0, 0, 0::bigint $$;
