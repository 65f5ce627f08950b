-- Staged uploads: large files of any type, streamed to uploads/<id> under the data
-- directory. A row is written only once its file is complete, synced and in place; what a
-- crash leaves between the two is swept at start (see uploads.rs).
CREATE TABLE staged_uploads (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT,
    content_type TEXT    NOT NULL,
    bytes        INTEGER NOT NULL CHECK (bytes >= 0),
    sha256       TEXT    NOT NULL,
    created_at   TEXT    NOT NULL
);
