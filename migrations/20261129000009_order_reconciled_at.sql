-- When the reconciliation last looked at an order, so each run looks at the
-- orders it has not seen for longest: open orders waiting days for their
-- shipment do not crowd out the rest.
ALTER TABLE orders ADD COLUMN reconciled_at TIMESTAMPTZ;
