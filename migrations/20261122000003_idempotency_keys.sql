-- Idempotency keys of POST /orders: one key names one request body forever.
-- The same key with the same body is the same order; with another body it is
-- refused (422), even while the first request is still in flight.
CREATE TABLE idempotency_keys (
    key           TEXT PRIMARY KEY CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash  TEXT NOT NULL,
    order_id      UUID NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
