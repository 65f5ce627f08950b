DROP TABLE proposals;
DROP INDEX jobs_status_idx;
DROP TABLE jobs;
