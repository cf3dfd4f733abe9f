-- Tag writes (setpoints and commands) as each gateway's write journal recorded them: who, from
-- where, the tag, old, requested and read-back values, the outcome and why. Forwarded from the
-- journal (<state_dir>/writes.sqlite) once a write has its outcome, keyed by the gateway, the
-- journal's identity and the journal row id, so a row sent twice (a reconnect before the
-- journal noted it as forwarded) is written once, and a new state directory never collides
-- with rows of an old one.
--
-- A plain table on both back-ends: a few rows per operator action, read by tag and time; it is
-- an audit record and no retention tier removes it. tag_id has no foreign key: a refused write
-- may name a tag the catalog does not have, and the catalog may drop a tag that was written.

CREATE TABLE tag_writes (
    gateway_id        text NOT NULL REFERENCES gateways (gateway_id),
    site              text NOT NULL DEFAULT '',
    journal_id        text NOT NULL,
    write_id          bigint NOT NULL CHECK (write_id > 0),
    tag_id            text NOT NULL,
    user_name         text NOT NULL,
    role              text CHECK (role IN ('viewer', 'operator', 'supervisor', 'admin')),
    origin            text NOT NULL,
    client            text,
    reason            text,
    requested_value   double precision,
    old_value         double precision,
    old_quality       smallint,
    read_back_value   double precision,
    read_back_quality smallint,
    outcome           text NOT NULL
                      CHECK (outcome IN ('confirmed', 'rejected', 'failed', 'unconfirmed', 'unknown')),
    refusal           text,
    device_id         text,
    device_status     text,
    detail            text NOT NULL DEFAULT '',
    requested_at      timestamptz NOT NULL,
    finished_at       timestamptz,
    forwarded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, journal_id, write_id)
);
CREATE INDEX tag_writes_tag_time_idx ON tag_writes (tag_id, requested_at DESC);
CREATE INDEX tag_writes_time_idx ON tag_writes (requested_at DESC);
CREATE INDEX tag_writes_outcome_idx ON tag_writes (outcome, requested_at DESC);
