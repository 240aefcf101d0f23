-- Channel sync: every change of a product's sellable level is recorded here,
-- in the transaction that makes it, once per shop that sells through the
-- OMS. One long-running workflow per shop drains its rows, pushes the levels
-- in batches and deletes each row only up to the version it pushed, so a
-- change made during a push is pushed afterwards. Nothing depends on an
-- order's saga getting that far.

-- The shops the workers are configured to keep in sync, and what their
-- sync last did (read by GET /channels).
CREATE TABLE shops (
    shop              TEXT PRIMARY KEY,
    -- A shop no longer configured is disabled: nothing is queued for it.
    enabled           BOOLEAN NOT NULL DEFAULT true,
    registered_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_write_at     TIMESTAMPTZ,
    last_error        TEXT,
    last_error_at     TIMESTAMPTZ,
    drift_checked_at  TIMESTAMPTZ,
    drift_checked     INTEGER CHECK (drift_checked >= 0),
    drift_repaired    INTEGER CHECK (drift_repaired >= 0)
);

-- Versions only grow, across all rows, so "delete up to the version pushed"
-- can never delete a newer change, even after a row was deleted and
-- re-created.
CREATE SEQUENCE channel_sync_version;

CREATE TABLE channel_sync_outbox (
    shop              TEXT NOT NULL REFERENCES shops (shop) ON DELETE CASCADE,
    sku               TEXT NOT NULL REFERENCES products (sku),
    version           BIGINT NOT NULL DEFAULT nextval('channel_sync_version'),
    -- When the oldest change still waiting for this shop was made (lag).
    first_changed_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    changed_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (shop, sku)
);
-- A shop drains its oldest changes first.
CREATE INDEX channel_sync_outbox_oldest ON channel_sync_outbox (shop, first_changed_at, sku);
