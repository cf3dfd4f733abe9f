-- Many gateways, one historian: the plant catalog belongs to a gateway.
--
-- Time-series rows (process_data, its rollups and latest values, kpis, energy_analysis,
-- maintenance_predictions, alerts, alarm_journal, tag_writes) already carry gateway_id, and
-- a gateway's site is its row in `gateways`. The catalog tables were keyed by their own ids
-- alone, so two plants that both have TI-101 overwrote each other's tag. Here every catalog
-- table gets gateway_id (FK to gateways) and is keyed by (gateway_id, id); the foreign keys
-- from the time-series tables become (gateway_id, id) too, so a row can only name a tag,
-- unit or equipment of its own gateway.
--
-- Existing rows get an owner, in this order: the gateway named by the operator
-- (`refineryiq migrate --catalog-owner ID`, setting refineryiq.catalog_owner); else the one
-- gateway in `gateways`; else, when `gateways` is empty, the migrating gateway (settings
-- refineryiq.gateway_id and refineryiq.site, which migrate() sets from the gateway's
-- configuration), registered here. Several registered gateways and no choice: the migration
-- refuses with a message saying how to choose. With several gateways and a chosen owner, the
-- other gateways get a copy of the units, equipment, tags and tanks (their time-series rows
-- keep a catalog row to point at; each gateway's next catalog sync corrects its own copy);
-- inventory goes to the owner only (stock must not be counted twice). No row is deleted.
--
-- ON DELETE SET NULL (column) needs PostgreSQL 15 or newer.
--
-- TimescaleDB: the only hypertables touched are kpis and energy_analysis (their foreign keys
-- to process_units are dropped and re-added as (gateway_id, unit_id); neither is compressed).
-- process_data, which is compressed, is not altered, and the continuous aggregates have no
-- foreign keys. The drop loop only looks at constraints in the schema itself: TimescaleDB
-- propagates ALTER TABLE on a hypertable to its chunks (_timescaledb_internal). Untested on
-- TimescaleDB: the CI server has no extension.

DO $$
BEGIN
    IF current_setting('server_version_num')::int < 150000 THEN
        RAISE EXCEPTION 'migration 0007 needs PostgreSQL 15 or newer (this server is %)',
            current_setting('server_version');
    END IF;
END $$;

-- Who owns the existing catalog rows (kept in the transaction setting
-- refineryiq.migration_owner; '' when there are no rows to own).
DO $$
DECLARE
    chosen    text := nullif(current_setting('refineryiq.catalog_owner', true), '');
    migrating text := nullif(current_setting('refineryiq.gateway_id', true), '');
    v_site    text := coalesce(current_setting('refineryiq.site', true), '');
    n         integer;
    owner     text;
    has_rows  boolean;
BEGIN
    SELECT count(*) INTO n FROM gateways;
    has_rows := EXISTS (SELECT 1 FROM process_units) OR EXISTS (SELECT 1 FROM equipment)
             OR EXISTS (SELECT 1 FROM process_tags) OR EXISTS (SELECT 1 FROM tanks)
             OR EXISTS (SELECT 1 FROM inventory);
    IF chosen IS NOT NULL THEN
        IF NOT EXISTS (SELECT 1 FROM gateways WHERE gateway_id = chosen) THEN
            RAISE EXCEPTION 'catalog owner % is not a registered gateway (registered: %)', chosen,
                coalesce((SELECT string_agg(gateway_id, ', ' ORDER BY gateway_id) FROM gateways),
                         'none');
        END IF;
        owner := chosen;
    ELSIF NOT has_rows THEN
        owner := NULL;
    ELSIF n = 1 THEN
        SELECT gateway_id INTO owner FROM gateways;
    ELSIF n = 0 THEN
        IF migrating IS NULL THEN
            RAISE EXCEPTION 'the catalog rows need an owning gateway and no gateway is registered: '
                'migrate with the gateway''s configuration (refineryiq migrate, or the gateway '
                'itself with database.migrate_on_start)';
        END IF;
        INSERT INTO gateways (gateway_id, site) VALUES (migrating, v_site);
        owner := migrating;
    ELSE
        RAISE EXCEPTION 'gateways % shared one catalog before rows carried a gateway: say which '
            'gateway''s catalog the rows are with `refineryiq migrate --catalog-owner GATEWAY_ID` '
            '(the others get a copy that their next start corrects)',
            (SELECT string_agg(gateway_id, ', ' ORDER BY gateway_id) FROM gateways);
    END IF;
    PERFORM set_config('refineryiq.migration_owner', coalesce(owner, ''), true);
END $$;

-- Foreign keys that reference the catalog tables go first (re-added below with gateway_id).
DO $$
DECLARE
    fk record;
BEGIN
    FOR fk IN
        SELECT c.conrelid::regclass AS rel, c.conname
        FROM pg_constraint c
        WHERE c.contype = 'f' AND c.conparentid = 0
          AND c.connamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())
          AND c.confrelid IN ('process_units'::regclass, 'equipment'::regclass,
                              'process_tags'::regclass)
        ORDER BY 1, 2
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', fk.rel, fk.conname);
    END LOOP;
END $$;

ALTER TABLE process_units ADD COLUMN gateway_id text;
ALTER TABLE equipment ADD COLUMN gateway_id text;
ALTER TABLE process_tags ADD COLUMN gateway_id text;
ALTER TABLE tanks ADD COLUMN gateway_id text;
ALTER TABLE inventory ADD COLUMN gateway_id text;
UPDATE process_units SET gateway_id = current_setting('refineryiq.migration_owner');
UPDATE equipment SET gateway_id = current_setting('refineryiq.migration_owner');
UPDATE process_tags SET gateway_id = current_setting('refineryiq.migration_owner');
UPDATE tanks SET gateway_id = current_setting('refineryiq.migration_owner');
UPDATE inventory SET gateway_id = current_setting('refineryiq.migration_owner');

ALTER TABLE process_units ALTER COLUMN gateway_id SET NOT NULL,
    DROP CONSTRAINT process_units_pkey, ADD PRIMARY KEY (gateway_id, unit_id),
    ADD FOREIGN KEY (gateway_id) REFERENCES gateways (gateway_id);
ALTER TABLE equipment ALTER COLUMN gateway_id SET NOT NULL,
    DROP CONSTRAINT equipment_pkey, ADD PRIMARY KEY (gateway_id, equipment_id),
    ADD FOREIGN KEY (gateway_id) REFERENCES gateways (gateway_id);
ALTER TABLE process_tags ALTER COLUMN gateway_id SET NOT NULL,
    DROP CONSTRAINT process_tags_pkey, ADD PRIMARY KEY (gateway_id, tag_id),
    ADD FOREIGN KEY (gateway_id) REFERENCES gateways (gateway_id);
ALTER TABLE tanks ALTER COLUMN gateway_id SET NOT NULL,
    DROP CONSTRAINT tanks_pkey, ADD PRIMARY KEY (gateway_id, tank_id),
    DROP CONSTRAINT tanks_name_key, ADD UNIQUE (gateway_id, name),
    ADD FOREIGN KEY (gateway_id) REFERENCES gateways (gateway_id);
ALTER TABLE inventory ALTER COLUMN gateway_id SET NOT NULL,
    DROP CONSTRAINT inventory_sku_key, ADD UNIQUE (gateway_id, sku),
    ADD FOREIGN KEY (gateway_id) REFERENCES gateways (gateway_id);

-- Several gateways and a chosen owner: the others get a copy of the shared catalog.
DO $$
DECLARE
    owner text := current_setting('refineryiq.migration_owner');
    tbl   text;
    cols  text;
    picks text;
BEGIN
    IF owner = '' THEN
        RETURN;
    END IF;
    FOREACH tbl IN ARRAY ARRAY['process_units', 'equipment', 'process_tags', 'tanks'] LOOP
        SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position),
               string_agg('x.' || quote_ident(column_name), ', ' ORDER BY ordinal_position)
        INTO cols, picks
        FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = tbl
          AND column_name <> 'gateway_id';
        EXECUTE format('INSERT INTO %I (gateway_id, %s) SELECT g.gateway_id, %s FROM %I x '
                       'CROSS JOIN gateways g WHERE x.gateway_id = $1 AND g.gateway_id <> $1',
                       tbl, cols, picks, tbl)
        USING owner;
    END LOOP;
END $$;

DROP INDEX equipment_unit_idx;
CREATE INDEX equipment_unit_idx ON equipment (gateway_id, unit_id);
DROP INDEX process_tags_unit_idx;
CREATE INDEX process_tags_unit_idx ON process_tags (gateway_id, unit_id);
DROP INDEX process_tags_equipment_idx;
CREATE INDEX process_tags_equipment_idx ON process_tags (gateway_id, equipment_id);

-- The catalog's own references, within one gateway.
ALTER TABLE equipment ADD FOREIGN KEY (gateway_id, unit_id)
    REFERENCES process_units (gateway_id, unit_id) ON UPDATE CASCADE ON DELETE SET NULL (unit_id);
ALTER TABLE process_tags ADD FOREIGN KEY (gateway_id, unit_id)
    REFERENCES process_units (gateway_id, unit_id) ON UPDATE CASCADE;
ALTER TABLE process_tags ADD FOREIGN KEY (gateway_id, equipment_id)
    REFERENCES equipment (gateway_id, equipment_id) ON UPDATE CASCADE
    ON DELETE SET NULL (equipment_id);
ALTER TABLE tanks ADD FOREIGN KEY (gateway_id, level_tag)
    REFERENCES process_tags (gateway_id, tag_id) ON UPDATE CASCADE;
ALTER TABLE tanks ADD FOREIGN KEY (gateway_id, unit_id)
    REFERENCES process_units (gateway_id, unit_id) ON UPDATE CASCADE;

-- Time-series rows name their own gateway's catalog rows.
ALTER TABLE process_data_latest ADD FOREIGN KEY (gateway_id, tag_id)
    REFERENCES process_tags (gateway_id, tag_id);
ALTER TABLE kpis ADD FOREIGN KEY (gateway_id, unit_id)
    REFERENCES process_units (gateway_id, unit_id) ON UPDATE CASCADE;
ALTER TABLE energy_analysis ADD FOREIGN KEY (gateway_id, unit_id)
    REFERENCES process_units (gateway_id, unit_id) ON UPDATE CASCADE;
ALTER TABLE maintenance_predictions ADD FOREIGN KEY (gateway_id, equipment_id)
    REFERENCES equipment (gateway_id, equipment_id) ON UPDATE CASCADE;
ALTER TABLE alerts ADD FOREIGN KEY (gateway_id, unit_id)
    REFERENCES process_units (gateway_id, unit_id) ON UPDATE CASCADE;
ALTER TABLE alerts ADD FOREIGN KEY (gateway_id, tag_id)
    REFERENCES process_tags (gateway_id, tag_id) ON UPDATE CASCADE;
ALTER TABLE alarm_journal ADD FOREIGN KEY (gateway_id, tag_id)
    REFERENCES process_tags (gateway_id, tag_id) ON UPDATE CASCADE;
-- @plain
ALTER TABLE process_data_hourly ADD FOREIGN KEY (gateway_id, tag_id)
    REFERENCES process_tags (gateway_id, tag_id);
ALTER TABLE process_data_daily ADD FOREIGN KEY (gateway_id, tag_id)
    REFERENCES process_tags (gateway_id, tag_id);
-- @end

-- The enriched latest values join each row to its own gateway's tag and unit, with the site.
CREATE OR REPLACE VIEW process_data_latest_enriched AS
SELECT l.time, l.gateway_id, l.tag_id, t.tag_name, t.unit_id, u.name AS unit_name,
       t.engineering_units, t.tag_type, l.value, l.quality, l.reason,
       t.min_val, t.max_val, t.is_critical, g.site
FROM process_data_latest l
JOIN process_tags t ON t.gateway_id = l.gateway_id AND t.tag_id = l.tag_id
LEFT JOIN process_units u ON u.gateway_id = t.gateway_id AND u.unit_id = t.unit_id
LEFT JOIN gateways g ON g.gateway_id = l.gateway_id;
