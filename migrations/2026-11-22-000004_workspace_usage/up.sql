-- The storage each workspace uses, as its runtime last reported it (the platform asks each
-- running runtime periodically and once more as it stops it).
ALTER TABLE workspaces
    ADD COLUMN used_bytes  bigint CHECK (used_bytes >= 0),
    ADD COLUMN quota_bytes bigint CHECK (quota_bytes >= 0),
    ADD COLUMN usage_at    timestamptz;
