-- Orders and what happens to them. The order workflow is the one writer of an
-- order's status; these tables are its durable record and what the API reads.

CREATE TABLE orders (
    -- Name-based UUID of (channel, shop, external id): every redelivery of an
    -- order maps to the same row.
    id                UUID PRIMARY KEY,
    channel           TEXT NOT NULL CHECK (channel IN ('shopify', 'api')),
    -- '' for channels without shops, so the uniqueness below needs no NULL rules.
    shop_domain       TEXT NOT NULL DEFAULT '',
    external_id       TEXT NOT NULL,
    name              TEXT,
    currency          TEXT,
    status            TEXT NOT NULL CHECK (status IN ('RECEIVED', 'RESERVED', 'FULFILLMENT_REQUESTED',
                          'SHIPPED', 'DELIVERED', 'CANCELLED', 'REJECTED', 'FAILED')),
    status_reason     TEXT,
    workflow_id       TEXT NOT NULL UNIQUE,
    -- Customer data kept only to hand the order to the warehouse.
    shipping_address  JSONB,
    wms_order_id      TEXT,
    request_id        TEXT,
    -- When the customer placed it on the channel.
    placed_at         TIMESTAMPTZ,
    created_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The database's own guard against allocating one channel order twice,
    -- independent of Temporal's id-reuse window.
    UNIQUE (channel, shop_domain, external_id)
);
CREATE INDEX orders_by_status ON orders (status, created_at);

CREATE TABLE order_lines (
    order_id          UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line_no           INTEGER NOT NULL CHECK (line_no > 0),
    -- Raw SKU as received (may be empty: such a line gets the order rejected).
    sku               TEXT NOT NULL,
    quantity          INTEGER NOT NULL CHECK (quantity > 0),
    unit_price        NUMERIC(14, 4),
    external_line_id  TEXT,
    title             TEXT,
    PRIMARY KEY (order_id, line_no)
);

CREATE TABLE order_status_history (
    id           BIGSERIAL PRIMARY KEY,
    order_id     UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    from_status  TEXT,
    to_status    TEXT NOT NULL,
    reason       TEXT,
    at           TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX order_status_history_by_order ON order_status_history (order_id, id);

-- What an operator should look at (rejections, failures, channel sync gaps).
CREATE TABLE notifications (
    id          BIGSERIAL PRIMARY KEY,
    order_id    UUID REFERENCES orders (id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    message     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX notifications_by_order ON notifications (order_id);

-- Validly signed webhooks we could not process: kept for an operator to fix
-- and replay, instead of making Shopify retry a payload that will never parse.
CREATE TABLE webhook_dead_letters (
    id           BIGSERIAL PRIMARY KEY,
    shop_domain  TEXT NOT NULL,
    topic        TEXT NOT NULL,
    webhook_id   TEXT,
    error        TEXT NOT NULL,
    payload      BYTEA NOT NULL,
    received_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    replayed_at  TIMESTAMPTZ
);

ALTER TABLE reservations
    ADD CONSTRAINT reservations_order_fk FOREIGN KEY (order_id) REFERENCES orders (id);
