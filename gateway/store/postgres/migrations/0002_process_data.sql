-- process_data, its hourly and daily rollups, and the latest value of each tag. The rollups
-- have the same columns on both back-ends so that the same queries work on either.
--
-- The key (tag_id, time, gateway_id) de-duplicates replays after a crash (ON CONFLICT DO
-- NOTHING) and serves history-by-tag queries. No FK on gateway_id: a per-row foreign-key
-- trigger halves ingest speed, and the writer registers its gateway before writing.
--
-- Plain PostgreSQL: native range partitioning by day (UTC), created ahead and dropped by
-- retention from process_data_maintain(), which the gateway calls; the rollups are tables the
-- writer keeps current in the same transaction as the raw rows (see writer.py).
-- TimescaleDB: a hypertable (1-day chunks), compressed segment-by tag after the hot window,
-- with continuous aggregates as rollups. Compression, retention and refresh policies depend
-- on the configured RetentionPolicy and are (re)applied by migrate() on every run
-- (retention.py), not here.
CREATE TABLE process_data (
    time       timestamptz NOT NULL,
    gateway_id text NOT NULL,
    tag_id     varchar(50) NOT NULL REFERENCES process_tags (tag_id),
    value      double precision,  -- NULL when the device gave no finite reading
    quality    smallint NOT NULL CHECK (quality IN (192, 128, 64)),
    reason     smallint NOT NULL DEFAULT 0 CHECK (reason >= 0),
    PRIMARY KEY (tag_id, time, gateway_id)
-- @plain
) PARTITION BY RANGE (time);
-- @timescale
);
SELECT create_hypertable('process_data', 'time', chunk_time_interval => INTERVAL '1 day',
                         if_not_exists => true);
-- @end
CREATE INDEX process_data_not_good_idx ON process_data (time DESC) WHERE quality < 192;
-- @timescale
ALTER TABLE process_data SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'tag_id, gateway_id',
    timescaledb.compress_orderby = 'time DESC'
);
-- @end

-- @plain
CREATE TABLE process_data_hourly (
    bucket     timestamptz NOT NULL,
    gateway_id text NOT NULL,
    tag_id     varchar(50) NOT NULL REFERENCES process_tags (tag_id),
    value_min  double precision NOT NULL,
    value_max  double precision NOT NULL,
    value_avg  double precision GENERATED ALWAYS AS (value_sum / samples) STORED,
    value_sum  double precision NOT NULL,
    value_last double precision NOT NULL,
    last_time  timestamptz NOT NULL,
    samples    bigint NOT NULL CHECK (samples > 0),
    PRIMARY KEY (tag_id, bucket, gateway_id)
);
CREATE INDEX process_data_hourly_bucket_idx ON process_data_hourly (bucket);

CREATE TABLE process_data_daily (LIKE process_data_hourly INCLUDING ALL);
ALTER TABLE process_data_daily
    ADD FOREIGN KEY (tag_id) REFERENCES process_tags (tag_id);
-- @timescale
-- Only good values are aggregated.
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
-- @end

-- The newest value of each tag, whatever its quality, kept by the writer.
CREATE TABLE process_data_latest (
    tag_id     varchar(50) NOT NULL REFERENCES process_tags (tag_id),
    gateway_id text NOT NULL,
    time       timestamptz NOT NULL,
    value      double precision,
    quality    smallint NOT NULL CHECK (quality IN (192, 128, 64)),
    reason     smallint NOT NULL DEFAULT 0,
    PRIMARY KEY (tag_id, gateway_id)
);

-- @plain
-- Daily partitions (UTC days) covering [p_from, p_to]; returns how many were created.
-- Serialised by an advisory lock so two gateways cannot race on the same CREATE TABLE.
CREATE FUNCTION process_data_ensure_partitions(p_from timestamptz, p_to timestamptz)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    parent regclass := 'process_data'::regclass;
    nsp text;
    day date;
    part text;
    created integer := 0;
BEGIN
    IF p_to - p_from > interval '400 days' THEN
        RAISE EXCEPTION 'process_data_ensure_partitions: range % .. % is longer than 400 days',
            p_from, p_to;
    END IF;
    SELECT n.nspname INTO nsp FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = parent;
    PERFORM pg_advisory_xact_lock(hashtext('refineryiq.partitions.' || nsp));
    FOR day IN SELECT generate_series((p_from AT TIME ZONE 'UTC')::date,
                                      (p_to AT TIME ZONE 'UTC')::date, interval '1 day')::date
    LOOP
        part := 'process_data_' || to_char(day, 'YYYYMMDD');
        IF to_regclass(format('%I.%I', nsp, part)) IS NULL THEN
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                           nsp, part, parent, day::timestamp AT TIME ZONE 'UTC',
                           (day + 1)::timestamp AT TIME ZONE 'UTC');
            created := created + 1;
        END IF;
    END LOOP;
    RETURN created;
END $$;

-- Daily partitions lying wholly before p_before are dropped; returns their names.
CREATE FUNCTION process_data_drop_partitions(p_before timestamptz)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    part record;
BEGIN
    FOR part IN
        SELECT c.oid::regclass AS rel, c.relname
        FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'process_data'::regclass
          AND c.relname ~ '^process_data_[0-9]{8}$'
          AND (to_date(right(c.relname, 8), 'YYYYMMDD') + 1)::timestamp AT TIME ZONE 'UTC'
              <= p_before
        ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %s', part.rel);
        RETURN NEXT part.relname;
    END LOOP;
END $$;

-- @end
-- Retention and look-ahead per storage_settings, as of p_now (the gateway calls this
-- periodically; tests pass a chosen p_now). On TimescaleDB the policies are TimescaleDB
-- jobs, and this has nothing to do.
CREATE FUNCTION process_data_maintain(p_now timestamptz DEFAULT now())
RETURNS TABLE (partitions_created integer, partitions_dropped integer, rollup_rows_deleted bigint)
-- @plain
LANGUAGE plpgsql AS $$
DECLARE
    s storage_settings;
    n bigint;
BEGIN
    SELECT * INTO STRICT s FROM storage_settings;
    partitions_created := process_data_ensure_partitions(p_now, p_now + s.partitions_ahead);
    SELECT count(*) INTO partitions_dropped
    FROM process_data_drop_partitions(p_now - s.raw_retention);
    DELETE FROM process_data_hourly WHERE bucket < p_now - s.rollup_retention;
    GET DIAGNOSTICS rollup_rows_deleted = ROW_COUNT;
    DELETE FROM process_data_daily WHERE bucket < p_now - s.rollup_retention;
    GET DIAGNOSTICS n = ROW_COUNT;
    rollup_rows_deleted := rollup_rows_deleted + n;
    DELETE FROM kpis WHERE time < p_now - s.rollup_retention;
    DELETE FROM energy_analysis WHERE time < p_now - s.rollup_retention;
    RETURN NEXT;
END $$;
-- @timescale
LANGUAGE sql AS $$ SELECT 0, 0, 0::bigint $$;
-- @end
