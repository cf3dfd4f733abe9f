-- Plain PostgreSQL: kpis and energy_analysis stay ordinary tables (a few rows per unit per
-- hour); process_data_maintain() deletes rows older than the rollup retention.
SELECT 1;
