-- A shop the app was uninstalled from: nothing is queued for or written to
-- it (it is disabled), and its order webhooks are refused, until an
-- operator registers the app's webhooks again after a reinstall.
ALTER TABLE shops ADD COLUMN uninstalled_at TIMESTAMPTZ;

-- Shopify's privacy requests as received and handled: the audit trail a
-- merchant is asked for, and for a customer's data request what the
-- operator exports. Ids only: no names, addresses or e-mails.
CREATE TABLE privacy_requests (
    id                     BIGSERIAL PRIMARY KEY,
    shop_domain            TEXT NOT NULL,
    topic                  TEXT NOT NULL
                           CHECK (topic IN ('customers/data_request', 'customers/redact', 'shop/redact')),
    -- Shopify's id of a data request, and of the customer.
    shopify_request_id     TEXT,
    customer_id            TEXT,
    -- Shopify order ids named by the request.
    shopify_order_ids      TEXT[] NOT NULL DEFAULT '{}',
    received_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- What a redaction removed.
    redacted_orders        INTEGER NOT NULL DEFAULT 0,
    redacted_dead_letters  INTEGER NOT NULL DEFAULT 0
);

-- When an order's customer data was removed at the shop's request.
ALTER TABLE orders ADD COLUMN redacted_at TIMESTAMPTZ;
