ALTER TABLE workspaces
    DROP COLUMN used_bytes,
    DROP COLUMN quota_bytes,
    DROP COLUMN usage_at;
