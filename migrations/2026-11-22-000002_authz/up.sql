-- Authorization: roles, casbin's rules, access levels and the audit log.

-- Roles that exist. A role's permissions are casbin `p` rules (in casbin_rule); who holds
-- it are `g` rules. Built-in roles cannot be deleted.
CREATE TABLE roles (
    name        text        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,31}$'),
    description text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 200),
    builtin     boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO roles (name, description, builtin) VALUES
    ('admin', 'Everything: users, roles, access levels, identity providers and the audit log', true),
    ('operator', 'The fleet: pools, running tenants, capacity and metrics; no role changes, no users'' data', true),
    ('auditor', 'Read-only over users, roles, access levels and the audit log', true),
    ('member', 'Every signed-in user: their own account, tokens and workspace', true);

-- casbin's rules, one per row, in the layout casbin adapters share.
CREATE TABLE casbin_rule (
    id    bigserial PRIMARY KEY,
    ptype text NOT NULL CHECK (ptype IN ('p', 'g')),
    v0    text NOT NULL DEFAULT '',
    v1    text NOT NULL DEFAULT '',
    v2    text NOT NULL DEFAULT '',
    v3    text NOT NULL DEFAULT '',
    v4    text NOT NULL DEFAULT '',
    v5    text NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX casbin_rule_key ON casbin_rule (ptype, v0, v1, v2, v3, v4, v5);
CREATE INDEX casbin_rule_g_idx ON casbin_rule (v1, v0) WHERE ptype = 'g';

-- Default rules from policies/policy.csv already seeded once. A rule listed here is never
-- seeded again, so what an admin removed stays removed.
CREATE TABLE policy_seeds (
    rule      text        PRIMARY KEY,
    seeded_at timestamptz NOT NULL DEFAULT now()
);

-- How much of the product and the machine a user gets.
CREATE TABLE access_levels (
    name                      text        PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_-]{0,31}$'),
    description               text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 200),
    features                  text[]      NOT NULL DEFAULT '{}',
    cpu_millicores            integer     NOT NULL CHECK (cpu_millicores BETWEEN 100 AND 64000),
    memory_mib                integer     NOT NULL CHECK (memory_mib BETWEEN 64 AND 262144),
    storage_mib               integer     NOT NULL CHECK (storage_mib BETWEEN 16 AND 10485760),
    max_upload_mib            integer     NOT NULL CHECK (max_upload_mib BETWEEN 1 AND 10240),
    ai_tokens_per_day         bigint      NOT NULL CHECK (ai_tokens_per_day >= 0),
    read_requests_per_minute  integer     NOT NULL CHECK (read_requests_per_minute BETWEEN 1 AND 1000000),
    write_requests_per_minute integer     NOT NULL CHECK (write_requests_per_minute BETWEEN 1 AND 1000000),
    idle_timeout_seconds      integer     NOT NULL CHECK (idle_timeout_seconds BETWEEN 60 AND 604800),
    created_at                timestamptz NOT NULL DEFAULT now(),
    updated_at                timestamptz NOT NULL DEFAULT now()
);
INSERT INTO access_levels (name, description, features, cpu_millicores, memory_mib, storage_mib,
        max_upload_mib, ai_tokens_per_day, read_requests_per_minute, write_requests_per_minute,
        idle_timeout_seconds) VALUES
    ('free', 'For trying WebSplat: the builder, documents and chat, small limits',
        '{sites,documents,chat,seo,export}', 500, 512, 1024, 10, 50000, 600, 120, 900),
    ('standard', 'For regular use: every feature with room to work',
        '{sites,documents,chat,seo,export,publish,analytics,agents,generation}', 1000, 1024, 5120, 50, 500000, 1200, 300, 3600),
    ('pro', 'For heavy use: every feature, web search and large limits',
        '{sites,documents,chat,seo,export,publish,analytics,agents,generation,web_search}', 2000, 4096, 51200, 200, 5000000, 3000, 900, 14400);

ALTER TABLE users
    ADD COLUMN access_level text NOT NULL DEFAULT 'free'
        REFERENCES access_levels (name) ON UPDATE CASCADE;
CREATE INDEX users_access_level_idx ON users (access_level);

-- Who did what, to whom, with what outcome. Append-only: the triggers below refuse every
-- UPDATE, DELETE and TRUNCATE, whoever sends it.
CREATE TABLE audit_log (
    id         bigserial   PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- No foreign key: the record outlives the account.
    actor_id   uuid,
    actor      text        NOT NULL,
    action     text        NOT NULL,
    target     text,
    outcome    text        NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    ip         text,
    request_id text,
    detail     jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, id DESC);
CREATE INDEX audit_log_action_idx ON audit_log (action, id DESC);
CREATE INDEX audit_log_target_idx ON audit_log (target, id DESC);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % is not allowed', TG_OP;
END;
$$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
