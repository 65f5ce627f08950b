-- Chat sessions about a project, and their messages.
CREATE TABLE chat_sessions (
    id         TEXT NOT NULL PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    title      TEXT NOT NULL,
    agent_id   TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX chat_sessions_project_idx ON chat_sessions (project_id, updated_at);

CREATE TABLE chat_messages (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    session_id TEXT    NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    role       TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    content    TEXT    NOT NULL,
    sources    TEXT    NOT NULL DEFAULT '[]',
    created_at TEXT    NOT NULL
);
CREATE INDEX chat_messages_session_idx ON chat_messages (session_id, id);
