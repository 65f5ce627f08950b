-- Engines per pool (issue #16): a pool runs its workspaces on the platform's own Docker
-- Engine (no row here) or on a Docker Swarm cluster reached at `endpoint` (a manager's
-- API). A swarm pool's workspace data lives on one node: `workspaces.node` pins the
-- workspace there.
CREATE TABLE pool_engines (
    pool     text PRIMARY KEY REFERENCES pools (name) ON DELETE CASCADE,
    engine   text NOT NULL CHECK (engine IN ('docker', 'swarm')),
    endpoint text CHECK (length(endpoint) BETWEEN 1 AND 300),
    CHECK ((engine = 'swarm') = (endpoint IS NOT NULL))
);

-- The node that holds the workspace's volume (the engine's node id), set at its first
-- start on a swarm pool (`moving:<from>:<to>` while an operator moves it); NULL while the
-- engine has one machine (Docker) or before then.
ALTER TABLE workspaces
    ADD COLUMN node text CHECK (length(node) BETWEEN 1 AND 300);
