-- A product's units live in three INTEGER counters and only move between
-- them, except when stock is set. The total must fit one counter, or
-- giving reserved units back (a release, a cancellation) would overflow
-- IN_STOCK and fail for good. Setting stock checks this first and answers
-- with the room left; the constraint is the last line of defence.
ALTER TABLE products
    ADD CONSTRAINT products_total_fits
    CHECK (in_stock::int8 + reserved + sold <= 2147483647);
