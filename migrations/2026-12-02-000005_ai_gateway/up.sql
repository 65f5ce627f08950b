-- The AI gateway's spend ledger: one row per call through the door (chat, embeddings,
-- search, retrieval), whatever its outcome. Append-only: the triggers below refuse every
-- UPDATE, DELETE and TRUNCATE. No foreign key to users: spend outlives a deleted account.
CREATE TABLE ai_ledger (
    id               bigserial   PRIMARY KEY,
    user_id          uuid        NOT NULL,
    endpoint         text        NOT NULL,
    provider         text        NOT NULL,
    model            text        NOT NULL,
    alias            text,
    streamed         boolean     NOT NULL DEFAULT false,
    tokens_in        bigint      NOT NULL DEFAULT 0 CHECK (tokens_in >= 0),
    tokens_out       bigint      NOT NULL DEFAULT 0 CHECK (tokens_out >= 0),
    -- Input tokens served from the provider's cache (part of tokens_in); reasoning tokens
    -- are part of tokens_out.
    tokens_cached    bigint      NOT NULL DEFAULT 0 CHECK (tokens_cached >= 0),
    -- Billionths of a US dollar, from platform/prices.toml (or the provider's own figure).
    cost_nanos       bigint      NOT NULL DEFAULT 0 CHECK (cost_nanos >= 0),
    latency_ms       integer     NOT NULL CHECK (latency_ms >= 0),
    -- ok, cut (the provider broke off a stream), cancelled (the client went away),
    -- provider_error, refused.
    outcome          text        NOT NULL,
    error            text,
    started_at       timestamptz NOT NULL,
    ended_at         timestamptz NOT NULL
);
CREATE INDEX ai_ledger_user_idx ON ai_ledger (user_id, started_at DESC);
CREATE INDEX ai_ledger_started_idx ON ai_ledger (started_at DESC);

CREATE FUNCTION ai_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the AI ledger is append-only: % is not allowed', TG_OP;
END;
$$;
CREATE TRIGGER ai_ledger_no_update BEFORE UPDATE OR DELETE ON ai_ledger
    FOR EACH ROW EXECUTE FUNCTION ai_ledger_append_only();
CREATE TRIGGER ai_ledger_no_truncate BEFORE TRUNCATE ON ai_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION ai_ledger_append_only();
