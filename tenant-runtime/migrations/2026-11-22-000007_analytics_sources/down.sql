DROP TRIGGER agents_delete_detaches_chat_sessions;
DROP TRIGGER chat_sessions_agent_update;
DROP TRIGGER chat_sessions_agent_insert;

CREATE TABLE analytics_referrers_site_only (
    project_id TEXT    NOT NULL,
    day        TEXT    NOT NULL,
    referrer   TEXT    NOT NULL,
    views      INTEGER NOT NULL,
    PRIMARY KEY (project_id, day, referrer)
);
INSERT INTO analytics_referrers_site_only (project_id, day, referrer, views)
    SELECT project_id, day, referrer, views FROM analytics_referrers WHERE source = 'site';
DROP TABLE analytics_referrers;
ALTER TABLE analytics_referrers_site_only RENAME TO analytics_referrers;
