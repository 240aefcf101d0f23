-- What the warehouse reported about the shipment: carrier, tracking number
-- and URL (order.shipped, order.shipment.tracking.updated).
ALTER TABLE orders ADD COLUMN tracking jsonb;
