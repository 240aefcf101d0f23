-- Keys of the REST API's clients. Only a SHA-256 of each key is kept: the
-- key itself is shown once, when it is created, and cannot be recovered.
CREATE TABLE api_keys (
    id              uuid PRIMARY KEY,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    key_hash        bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    -- Names as `domain::Scope` spells them; checked by the code that parses them.
    scopes          text[] NOT NULL CHECK (cardinality(scopes) >= 1),
    -- This key's own rate limit; NULL means the API's default.
    rate_per_second double precision CHECK (rate_per_second IS NULL OR rate_per_second > 0),
    burst           double precision CHECK (burst IS NULL OR burst >= 1),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
