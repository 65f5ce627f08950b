-- A website project. Its content lives in versions: nothing is overwritten in place.
CREATE TABLE projects (
    id           TEXT    NOT NULL PRIMARY KEY,
    name         TEXT    NOT NULL,
    head_version INTEGER NOT NULL,
    -- Versions undone and not yet redone, most recent last (JSON array of numbers).
    redo_stack   TEXT    NOT NULL DEFAULT '[]',
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
);

-- Every change makes a version: its settings and a manifest of files (below).
CREATE TABLE versions (
    project_id TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    number     INTEGER NOT NULL,
    parent     INTEGER,
    message    TEXT    NOT NULL,
    settings   TEXT    NOT NULL,
    created_at TEXT    NOT NULL,
    PRIMARY KEY (project_id, number)
);

-- File contents, addressed by their SHA-256, shared by every version that has them.
CREATE TABLE blobs (
    hash    TEXT    NOT NULL PRIMARY KEY,
    size    INTEGER NOT NULL,
    content BLOB    NOT NULL
);

-- Which file is at which path in which version.
CREATE TABLE version_files (
    project_id TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    path       TEXT    NOT NULL,
    blob       TEXT    NOT NULL REFERENCES blobs (hash),
    PRIMARY KEY (project_id, version, path),
    FOREIGN KEY (project_id, version) REFERENCES versions (project_id, number) ON DELETE CASCADE
);
