-- Analytics results and alarms forwarded by each gateway (gateway/store/postgres/outbound.py).
--
-- outbound_cursor: per gateway and kind of row (alarm journal, KPIs, energy, predictions),
-- the position in the gateway's own store up to which the database holds the rows. It moves
-- in the same transaction as the rows it covers, so a replay after a crash or an outage
-- starts exactly after the last committed row. Each gateway touches only its own rows.
--
-- alerts and alarm_journal had only generated ids; they get the gateway's own keys (the
-- occurrence id and key of an alarm, the journal's sequence number and the alarm's kind) so
-- a forwarded transition finds its alert and a replay is a no-op. The columns are nullable:
-- rows written before this migration keep NULL and are untouched; the unique indexes only
-- cover rows that have the key. No existing row changes.

CREATE TABLE outbound_cursor (
    gateway_id    text NOT NULL REFERENCES gateways (gateway_id),
    kind          text NOT NULL,
    position      double precision NOT NULL DEFAULT 0,
    rows_forwarded bigint NOT NULL DEFAULT 0,
    rows_refused  bigint NOT NULL DEFAULT 0,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, kind)
);

ALTER TABLE alerts ADD COLUMN alarm_id text, ADD COLUMN alarm_key text;
CREATE UNIQUE INDEX alerts_gateway_alarm_idx ON alerts (gateway_id, alarm_id)
    WHERE alarm_id IS NOT NULL;

ALTER TABLE alarm_journal ADD COLUMN seq bigint, ADD COLUMN alarm_key text,
    ADD COLUMN kind varchar(20);
CREATE UNIQUE INDEX alarm_journal_gateway_seq_idx ON alarm_journal (gateway_id, seq)
    WHERE seq IS NOT NULL;
CREATE INDEX alarm_journal_gateway_time_idx ON alarm_journal (gateway_id, time);
CREATE INDEX kpis_gateway_time_idx ON kpis (gateway_id, time);
CREATE INDEX energy_analysis_gateway_time_idx ON energy_analysis (gateway_id, time);

-- maintenance_predictions gets no unique key: existing installations may hold rows an
-- operator loaded by hand, and the cursor alone makes forwarding exactly-once.
CREATE INDEX maintenance_predictions_gateway_time_idx ON maintenance_predictions (gateway_id, time);
