DROP TABLE warm_runtimes;
DROP INDEX tenants_started;
DROP INDEX tenants_queue;
DELETE FROM tenants WHERE state = 'queued';
DROP INDEX tenants_one_live_per_user;
CREATE UNIQUE INDEX tenants_one_live_per_user ON tenants (user_id)
    WHERE state IN ('requested', 'creating', 'starting', 'ready');
ALTER TABLE tenants DROP COLUMN admitted_at;
ALTER TABLE tenants DROP CONSTRAINT tenants_secret_once_admitted;
UPDATE tenants SET secret_hash = '\x'::bytea WHERE secret_hash IS NULL;
ALTER TABLE tenants ALTER COLUMN secret_hash SET NOT NULL;
ALTER TABLE tenants DROP CONSTRAINT tenants_state_check;
ALTER TABLE tenants ADD CONSTRAINT tenants_state_check
    CHECK (state IN ('requested', 'creating', 'starting', 'ready',
                     'stopping', 'stopped', 'failed'));
UPDATE tenants SET pool = access_level;
ALTER TABLE tenants DROP COLUMN access_level;
DROP TABLE pool_access_levels;
DROP TABLE pools;
