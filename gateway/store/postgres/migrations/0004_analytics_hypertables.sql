-- @plain
-- Plain PostgreSQL: kpis and energy_analysis stay ordinary tables (a few rows per unit per
-- hour); process_data_maintain() deletes rows older than the rollup retention.
SELECT 1;
-- @timescale
-- kpis and energy_analysis as hypertables (7-day chunks); retention in retention.py.
SELECT create_hypertable('kpis', 'time', chunk_time_interval => INTERVAL '7 days',
                         if_not_exists => true, migrate_data => true);
SELECT create_hypertable('energy_analysis', 'time', chunk_time_interval => INTERVAL '7 days',
                         if_not_exists => true, migrate_data => true);
-- @end
