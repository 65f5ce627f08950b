-- Pools: named sets of capacity that operators size live, each serving one or more access
-- levels (a level no pool names is served by `default`). The platform's start-up settings
-- (WEBSPLAT_MAX_RUNNING_TENANTS, WEBSPLAT_MAX_CONCURRENT_SPAWNS, …) only seed pools an
-- operator has not changed yet (`operated`).
CREATE TABLE pools (
    name                 text        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,31}$'),
    description          text        NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    -- Workspaces running, starting or queued at once.
    max_running          integer     NOT NULL CHECK (max_running BETWEEN 0 AND 100000),
    -- Workspaces starting at once; more wait in the queue.
    max_starting         integer     NOT NULL CHECK (max_starting BETWEEN 1 AND 1000),
    -- Starts waiting at most; beyond, a start is refused (429).
    queue_max            integer     NOT NULL DEFAULT 100 CHECK (queue_max BETWEEN 0 AND 100000),
    -- Overrides the access levels' idle timeout for the pool's workspaces.
    idle_timeout_seconds integer     CHECK (idle_timeout_seconds BETWEEN 60 AND 2592000),
    -- Started, unclaimed runtimes kept ready for first sign-ins (of the access level new
    -- users get), and how long one waits before it is remade.
    warm_new             integer     NOT NULL DEFAULT 0 CHECK (warm_new BETWEEN 0 AND 1000),
    warm_ttl_seconds     integer     NOT NULL DEFAULT 3600
                                     CHECK (warm_ttl_seconds BETWEEN 60 AND 604800),
    -- No new starts; running workspaces finish.
    draining             boolean     NOT NULL DEFAULT false,
    -- Whether an operator has changed it (then start-up settings no longer seed it).
    operated             boolean     NOT NULL DEFAULT false,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

INSERT INTO pools (name, description, max_running, max_starting)
VALUES ('default', 'Every access level no other pool serves.', 100, 8);

-- Which pool serves an access level (absent: `default`).
CREATE TABLE pool_access_levels (
    access_level text PRIMARY KEY
                      REFERENCES access_levels (name) ON UPDATE CASCADE ON DELETE CASCADE,
    pool         text NOT NULL REFERENCES pools (name) ON DELETE CASCADE
);
CREATE INDEX pool_access_levels_by_pool ON pool_access_levels (pool);

-- A tenant now records its pool and its access level apart (until now `pool` held the
-- access level).
ALTER TABLE tenants ADD COLUMN access_level text;
UPDATE tenants SET access_level = pool, pool = 'default';
ALTER TABLE tenants ALTER COLUMN access_level SET NOT NULL;

-- A start waiting for its pool's concurrency is a durable row in state `queued` (so it
-- survives any replica), in FIFO order of `requested_at`; it gets its secret when it leaves
-- the queue (`admitted_at`).
ALTER TABLE tenants DROP CONSTRAINT tenants_state_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_state_check
    CHECK (state IN ('queued', 'requested', 'creating', 'starting', 'ready',
                     'stopping', 'stopped', 'failed'));
ALTER TABLE tenants ALTER COLUMN secret_hash DROP NOT NULL;
ALTER TABLE tenants ADD CONSTRAINT tenants_secret_once_admitted
    CHECK (state IN ('queued', 'stopping', 'stopped', 'failed') OR secret_hash IS NOT NULL);
ALTER TABLE tenants ADD COLUMN admitted_at timestamptz;
UPDATE tenants SET admitted_at = requested_at;

DROP INDEX tenants_one_live_per_user;
CREATE UNIQUE INDEX tenants_one_live_per_user ON tenants (user_id)
    WHERE state IN ('queued', 'requested', 'creating', 'starting', 'ready');
CREATE INDEX tenants_queue ON tenants (pool, requested_at) WHERE state = 'queued';
CREATE INDEX tenants_started ON tenants (ready_at) WHERE ready_at IS NOT NULL;

-- Warm runtimes: started ahead, with a fresh empty volume and no identity, each answering
-- only its health check and one claim. A first sign-in claims one (the row goes; its tenant
-- knows the container by its id); the rest are remade when their spec or image changes, or
-- when they pass their time to live.
CREATE TABLE warm_runtimes (
    id             uuid        PRIMARY KEY,
    pool           text        NOT NULL REFERENCES pools (name) ON DELETE CASCADE,
    access_level   text        NOT NULL,
    image          text        NOT NULL,
    -- SHA-256 of everything the container is made from; a different one is stale.
    spec_hash      text        NOT NULL,
    container_name text        NOT NULL UNIQUE,
    container_id   text,
    address        text,
    volume         text        NOT NULL UNIQUE,
    state          text        NOT NULL CHECK (state IN ('starting', 'ready')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL
);
CREATE INDEX warm_runtimes_ready ON warm_runtimes (pool, access_level, spec_hash, created_at)
    WHERE state = 'ready';
