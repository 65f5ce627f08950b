-- Warm capacity for returning people (issue #13, point 3). When a workspace stops, the
-- person's next container can be made at once with their volume bound, never started
-- ("created"), and, for people active recently, started and left unclaimed ("ready") until
-- they sign in again or its time to live passes. Operators size it per pool.
ALTER TABLE pools
    -- Make each returning person's next container as their workspace stops.
    ADD COLUMN returning_ahead       boolean NOT NULL DEFAULT false,
    -- Of those, how many the pool keeps started (unclaimed) for people active recently.
    ADD COLUMN returning_warm        integer NOT NULL DEFAULT 0
                                     CHECK (returning_warm BETWEEN 0 AND 1000),
    -- How long a made or started next container waits for its person.
    ADD COLUMN returning_ttl_seconds integer NOT NULL DEFAULT 3600
                                     CHECK (returning_ttl_seconds BETWEEN 60 AND 604800);

-- One next container per person at most. Claiming deletes the row (`DELETE … RETURNING`),
-- so two sign-ins on any replicas can never both get it.
CREATE TABLE returning_runtimes (
    id             uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    pool           text        NOT NULL REFERENCES pools (name) ON DELETE CASCADE,
    access_level   text        NOT NULL,
    image          text        NOT NULL,
    -- SHA-256 of everything the container is made from (image digest included).
    spec_hash      text        NOT NULL,
    container_name text        NOT NULL UNIQUE,
    container_id   text,
    address        text,
    -- The person's own volume, bound to the container.
    volume         text        NOT NULL,
    -- creating → created (made, never started) → starting → ready (started, unclaimed).
    state          text        NOT NULL
                               CHECK (state IN ('creating', 'created', 'starting', 'ready')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX returning_runtimes_by_pool ON returning_runtimes (pool, state);
