DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
DROP INDEX users_access_level_idx;
ALTER TABLE users DROP COLUMN access_level;
DROP TABLE access_levels;
DROP TABLE policy_seeds;
DROP TABLE casbin_rule;
DROP TABLE roles;
