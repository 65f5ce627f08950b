-- Named agent configurations, run by the generation pipeline.
CREATE TABLE agents (
    id           TEXT NOT NULL PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL,
    instructions TEXT NOT NULL,
    model        TEXT NOT NULL,
    tools        TEXT NOT NULL,  -- JSON array of tool names
    autonomy     TEXT NOT NULL CHECK (autonomy IN ('suggest', 'ask', 'autonomous')),
    creativity   REAL NOT NULL CHECK (creativity >= 0 AND creativity <= 1),
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
