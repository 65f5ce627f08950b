-- Engines per pool (issue #16): a pool runs its workspaces on the platform's own Docker
-- Engine, or on a Docker Swarm cluster reached at `endpoint` (a manager's API). A swarm
-- pool's workspace data lives on one node: `workspaces.node` pins the workspace there.
ALTER TABLE pools
    ADD COLUMN engine   text NOT NULL DEFAULT 'docker' CHECK (engine IN ('docker', 'swarm')),
    ADD COLUMN endpoint text CHECK (length(endpoint) BETWEEN 1 AND 300),
    ADD CONSTRAINT pools_swarm_has_endpoint
        CHECK ((engine = 'swarm') = (endpoint IS NOT NULL));

-- The node that holds the workspace's volume (the engine's node id), set at its first
-- start on a swarm pool; NULL while the engine has one machine (Docker) or before then.
ALTER TABLE workspaces
    ADD COLUMN node text CHECK (length(node) BETWEEN 1 AND 100);
