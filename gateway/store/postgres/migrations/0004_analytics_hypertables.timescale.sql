-- kpis and energy_analysis as hypertables (7-day chunks); retention in retention.py.
SELECT create_hypertable('kpis', 'time', chunk_time_interval => INTERVAL '7 days',
                         if_not_exists => true, migrate_data => true);
SELECT create_hypertable('energy_analysis', 'time', chunk_time_interval => INTERVAL '7 days',
                         if_not_exists => true, migrate_data => true);
