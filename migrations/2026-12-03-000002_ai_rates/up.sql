-- The AI gateway's rates (issue #11): calls and tokens per minute, per user, set on the
-- access level and counted in Redis so every replica shares them. The token rate counts
-- what a call may use (its input estimate plus its output cap) when it starts, settled to
-- what it used when it ends.
ALTER TABLE access_levels
    ADD COLUMN ai_requests_per_minute integer NOT NULL DEFAULT 60
        CHECK (ai_requests_per_minute BETWEEN 1 AND 1000000),
    ADD COLUMN ai_tokens_per_minute bigint NOT NULL DEFAULT 100000
        CHECK (ai_tokens_per_minute >= 1);
UPDATE access_levels SET ai_requests_per_minute = 20, ai_tokens_per_minute = 20000 WHERE name = 'free';
UPDATE access_levels SET ai_requests_per_minute = 240, ai_tokens_per_minute = 1000000 WHERE name = 'pro';
