ALTER TABLE workspaces DROP COLUMN node;
DROP TABLE pool_engines;
