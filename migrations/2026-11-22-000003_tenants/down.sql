DROP TABLE tenants;
DROP TABLE workspaces;
