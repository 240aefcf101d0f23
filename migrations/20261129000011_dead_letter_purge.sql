-- Dead letters hold raw webhook payloads, customer data included. After the
-- retention (OMS_DEAD_LETTER_RETENTION_DAYS) the payload is emptied and this
-- says when; the row stays as a record that something was refused and why.
ALTER TABLE webhook_dead_letters ADD COLUMN payload_purged_at timestamptz;

CREATE INDEX webhook_dead_letters_unpurged ON webhook_dead_letters (received_at)
    WHERE payload_purged_at IS NULL;
