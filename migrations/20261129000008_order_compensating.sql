-- COMPENSATING: the warehouse did not take the order and the saga is
-- settling it (asking the warehouse whether it has it after all, then
-- undoing the reservation). Widening the CHECK keeps every existing row
-- valid.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('RECEIVED', 'RESERVED', 'COMPENSATING', 'FULFILLMENT_REQUESTED',
                      'SHIPPED', 'DELIVERED', 'CANCELLED', 'REJECTED', 'FAILED'));
