-- Workspaces and their tenant runtimes. A user's workspace (slug, volume) lives as long as
-- the user; a tenant is one container's life, from request to stop, never reused.

CREATE TABLE workspaces (
    user_id    uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- The host label of the workspace origin: {slug}.{workspace domain}.
    slug       text        NOT NULL UNIQUE
                           CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    -- The Docker volume (or, later, Kubernetes volume claim) mounted at /data.
    volume     text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tenants (
    id             uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state          text        NOT NULL
                               CHECK (state IN ('requested', 'creating', 'starting', 'ready',
                                                'stopping', 'stopped', 'failed')),
    -- Why it failed or stopped, in words.
    reason         text,
    -- The pool it was sized from (the user's access level at spawn).
    pool           text        NOT NULL,
    image          text        NOT NULL,
    container_name text        NOT NULL UNIQUE,
    container_id   text,
    -- ip:port on the tenant network, once started.
    address        text,
    -- SHA-256 of the per-tenant secret; the secret itself is only in the container and in
    -- the platform's route entry in Redis.
    secret_hash    bytea       NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    ready_at       timestamptz,
    ended_at       timestamptz,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((state IN ('failed', 'stopping', 'stopped')) OR reason IS NULL)
);

-- At most one tenant per user on its way up or serving: two sign-ins at once, or two
-- platform replicas, can never both spawn for one user. (A tenant being stopped may
-- overlap with its successor.)
CREATE UNIQUE INDEX tenants_one_live_per_user ON tenants (user_id)
    WHERE state IN ('requested', 'creating', 'starting', 'ready');
CREATE INDEX tenants_by_state ON tenants (state)
    WHERE state NOT IN ('stopped', 'failed');
CREATE INDEX tenants_by_user ON tenants (user_id, requested_at DESC);
CREATE INDEX tenants_by_container ON tenants (container_id);
