-- Replaying dead-lettered webhooks (`oms-api dead-letters replay <id>`):
-- which order a successful replay produced, and how often replay was tried.
-- `error` keeps the latest reason the payload could not be processed.
ALTER TABLE webhook_dead_letters
    ADD COLUMN replayed_order_id UUID,
    ADD COLUMN replay_attempts   INT NOT NULL DEFAULT 0 CHECK (replay_attempts >= 0),
    ADD CONSTRAINT replayed_together CHECK ((replayed_at IS NULL) = (replayed_order_id IS NULL));

-- Operators list what still waits for a replay.
CREATE INDEX webhook_dead_letters_pending ON webhook_dead_letters (id) WHERE replayed_at IS NULL;
