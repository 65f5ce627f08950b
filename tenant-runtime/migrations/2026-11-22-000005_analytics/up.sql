-- Page views without cookies. A visitor is a hash of (daily salt, address, browser,
-- project); the salt changes every day and old salts are deleted, so no one — us included —
-- can follow a visitor from one day to the next.
CREATE TABLE analytics_salts (
    day  TEXT NOT NULL PRIMARY KEY,
    salt TEXT NOT NULL
);

-- Raw hits of the last days; older days are rolled up into the tables below.
CREATE TABLE analytics_hits (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    project_id TEXT    NOT NULL,
    source     TEXT    NOT NULL CHECK (source IN ('site', 'preview')),
    path       TEXT    NOT NULL,
    day        TEXT    NOT NULL,
    visitor    TEXT    NOT NULL,
    referrer   TEXT    NOT NULL
);
CREATE INDEX analytics_hits_project_day_idx ON analytics_hits (project_id, day);

CREATE TABLE analytics_daily (
    project_id TEXT    NOT NULL,
    source     TEXT    NOT NULL,
    day        TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    views      INTEGER NOT NULL,
    visitors   INTEGER NOT NULL,
    PRIMARY KEY (project_id, source, day, path)
);

CREATE TABLE analytics_referrers (
    project_id TEXT    NOT NULL,
    day        TEXT    NOT NULL,
    referrer   TEXT    NOT NULL,
    views      INTEGER NOT NULL,
    PRIMARY KEY (project_id, day, referrer)
);
