-- Why each line of a rejected order could not be allocated, as the saga
-- found it: `[{"line_no": 1, "sku": "…", "reason": "…"}]`. Kept structured
-- so the API answers a list of reasons without re-parsing a sentence.
ALTER TABLE orders ADD COLUMN line_problems JSONB;
