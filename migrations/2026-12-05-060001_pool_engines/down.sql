ALTER TABLE workspaces DROP COLUMN node;
ALTER TABLE pools
    DROP CONSTRAINT pools_swarm_has_endpoint,
    DROP COLUMN endpoint,
    DROP COLUMN engine;
