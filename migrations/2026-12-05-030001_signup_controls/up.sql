-- Capacity taken by sign-ups (issue #15, point 6).
--
-- Each access level may cap the workspaces its users run at once (NULL: only the pool's
-- limit). `free` gets a cap of 50, half the default pool, so sign-ups alone cannot take
-- every workspace from the people on other levels. (How often one person may start a
-- workspace is a setting, WEBSPLAT_RATE_LIMIT_WORKSPACE_STARTS, counted in Redis.)
ALTER TABLE access_levels
    ADD COLUMN max_running_workspaces integer
        CHECK (max_running_workspaces IS NULL OR max_running_workspaces BETWEEN 1 AND 1000000);
UPDATE access_levels SET max_running_workspaces = 50 WHERE name = 'free';

-- Invitations, for invitation-only registration: an admin makes one (the code is shown
-- once; only its SHA-256 is kept), a registration uses it up. Optionally bound to one
-- e-mail address.
CREATE TABLE invitations (
    id          uuid        PRIMARY KEY,
    code_hash   text        NOT NULL UNIQUE,
    email       text        CHECK (email IS NULL OR char_length(email) BETWEEN 3 AND 254),
    note        text        NOT NULL DEFAULT '' CHECK (char_length(note) <= 200),
    created_by  uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    used_by     uuid        REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX invitations_created_at_idx ON invitations (created_at DESC);

-- E-mail verification (when an SMTP server is set): a local account registered then cannot
-- sign in until the link mailed to it is followed. Accounts made before keep signing in.
ALTER TABLE local_credentials
    ADD COLUMN verification_pending boolean NOT NULL DEFAULT false;
