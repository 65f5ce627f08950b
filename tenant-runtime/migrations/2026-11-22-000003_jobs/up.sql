-- Long work (generation, later indexing and export) as background jobs, resumed after a
-- restart: a job still queued or running when the process stopped is run again.
CREATE TABLE jobs (
    id         TEXT    NOT NULL PRIMARY KEY,
    kind       TEXT    NOT NULL,
    project_id TEXT    REFERENCES projects (id) ON DELETE CASCADE,
    status     TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    progress   INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    step       TEXT    NOT NULL DEFAULT '',
    input      TEXT    NOT NULL,
    result     TEXT,
    error      TEXT,
    created_at TEXT    NOT NULL,
    updated_at TEXT    NOT NULL
);
CREATE INDEX jobs_status_idx ON jobs (status);

-- Changes an agent proposes (autonomy "suggest"), waiting for the user to accept or reject.
CREATE TABLE proposals (
    id           TEXT    NOT NULL PRIMARY KEY,
    project_id   TEXT    NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    job_id       TEXT    REFERENCES jobs (id) ON DELETE SET NULL,
    base_version INTEGER NOT NULL,
    summary      TEXT    NOT NULL,
    files        TEXT    NOT NULL,  -- JSON object: path -> content
    status       TEXT    NOT NULL CHECK (status IN ('open', 'accepted', 'rejected')),
    created_at   TEXT    NOT NULL
);
