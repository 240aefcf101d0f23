-- ON_HOLD: the warehouse stopped working on the order (an exception, a
-- hold); AWAITING_PAYMENT: reserved, but handed to the warehouse only once
-- paid. Widening the CHECK keeps every existing row valid.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('RECEIVED', 'RESERVED', 'AWAITING_PAYMENT', 'COMPENSATING',
                      'FULFILLMENT_REQUESTED', 'ON_HOLD', 'SHIPPED', 'DELIVERED',
                      'CANCELLED', 'REJECTED', 'FAILED'));

-- Whether the order waits for its payment before it goes to the warehouse,
-- as decided at intake: a workflow started later from this record (the
-- first one never started) must wait as well.
ALTER TABLE orders ADD COLUMN awaits_payment BOOLEAN NOT NULL DEFAULT false;

-- What the shop last reported of an order's payment, kept whether or not
-- the order has arrived: Shopify does not deliver webhooks in order, and an
-- order whose payment came first must not wait for it. No foreign key for
-- that reason; no customer data in it.
CREATE TABLE order_payments (
    order_id          UUID PRIMARY KEY,
    financial_status  TEXT NOT NULL,
    reported_at       TIMESTAMPTZ NOT NULL DEFAULT now()
);
