-- Referrers kept apart for previews and published sites, like the other totals, so the
-- roll-up keeps both (it used to keep the published sites' only).
CREATE TABLE analytics_referrers_by_source (
    project_id TEXT    NOT NULL,
    source     TEXT    NOT NULL CHECK (source IN ('site', 'preview')),
    day        TEXT    NOT NULL,
    referrer   TEXT    NOT NULL,
    views      INTEGER NOT NULL,
    PRIMARY KEY (project_id, source, day, referrer)
);
INSERT INTO analytics_referrers_by_source (project_id, source, day, referrer, views)
    SELECT project_id, 'site', day, referrer, views FROM analytics_referrers;
DROP TABLE analytics_referrers;
ALTER TABLE analytics_referrers_by_source RENAME TO analytics_referrers;

-- A chat session's agent must exist; deleting the agent leaves its sessions without one.
-- Triggers, because SQLite cannot add a foreign key to a column without rebuilding
-- chat_sessions, which chat_messages references.
UPDATE chat_sessions SET agent_id = NULL
    WHERE agent_id IS NOT NULL AND agent_id NOT IN (SELECT id FROM agents);
CREATE TRIGGER chat_sessions_agent_insert BEFORE INSERT ON chat_sessions
    WHEN NEW.agent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM agents WHERE id = NEW.agent_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: chat_sessions.agent_id');
END;
CREATE TRIGGER chat_sessions_agent_update BEFORE UPDATE OF agent_id ON chat_sessions
    WHEN NEW.agent_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM agents WHERE id = NEW.agent_id)
BEGIN
    SELECT RAISE(ABORT, 'FOREIGN KEY constraint failed: chat_sessions.agent_id');
END;
CREATE TRIGGER agents_delete_detaches_chat_sessions AFTER DELETE ON agents
BEGIN
    UPDATE chat_sessions SET agent_id = NULL WHERE agent_id = OLD.id;
END;
