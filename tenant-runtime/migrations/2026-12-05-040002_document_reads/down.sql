ALTER TABLE documents DROP COLUMN reads;
