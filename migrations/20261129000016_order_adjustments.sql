-- Refunds and edits before shipping take units off an order's lines: a
-- line may end with none (it stays, for the record).
ALTER TABLE order_lines DROP CONSTRAINT order_lines_quantity_check;
ALTER TABLE order_lines ADD CONSTRAINT order_lines_quantity_check CHECK (quantity >= 0);

-- The warehouse order is replaced when an order's lines change after the
-- hand-over (the warehouse's orders cannot be edited); each replacement
-- carries a new reference, `<order id>~<revision>`.
ALTER TABLE orders ADD COLUMN wms_revision INTEGER NOT NULL DEFAULT 0;

-- Each adjustment once, whatever Shopify redelivers and Temporal retries:
-- keyed by the refund's or edit's own id.
CREATE TABLE order_adjustments (
    order_id    UUID NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    summary     TEXT NOT NULL,
    applied_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, key)
);
