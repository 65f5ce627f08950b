ALTER TABLE local_credentials DROP COLUMN verification_pending;
DROP TABLE invitations;
ALTER TABLE access_levels DROP COLUMN max_running_workspaces;
