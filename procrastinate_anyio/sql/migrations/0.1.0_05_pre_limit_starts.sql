-- Migration 0.1.0_05: the starts of rate-limited jobs, one row per start and
-- per limit, which the claim counts within each limit's period.

CREATE TABLE pa_limit_starts (
    limit_key text NOT NULL,
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pa_limit_starts_key_idx ON pa_limit_starts (limit_key, started_at);
