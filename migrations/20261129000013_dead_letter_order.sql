-- The order a dead letter concerns, when it names one the OMS did not have
-- yet (a Shopify cancellation that overtook its order): the order's own
-- webhook, arriving later, finds it and is not started.
ALTER TABLE webhook_dead_letters ADD COLUMN order_id uuid;

CREATE INDEX webhook_dead_letters_by_order ON webhook_dead_letters (order_id)
    WHERE order_id IS NOT NULL;
