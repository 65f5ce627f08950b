ALTER TABLE access_levels DROP COLUMN ai_tokens_per_minute, DROP COLUMN ai_requests_per_minute;
