-- How many times each document has been read for indexing, counted before each read (issue
-- #15, point 11): one whose reading stopped the workspace twice (a PDF bomb past every
-- bound, say) is failed with its reason instead of read again at every start.
ALTER TABLE documents ADD COLUMN reads INTEGER NOT NULL DEFAULT 0;
