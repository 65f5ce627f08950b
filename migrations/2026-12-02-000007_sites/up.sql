-- Published sites: a name chosen by its owner, unique over the platform, and the build of
-- it that is served now. The files live in storage (the sites directory); a publish writes
-- a new build and then points the row at it, so visitors never see half a site.
CREATE TABLE sites (
    name TEXT PRIMARY KEY CHECK (name ~ '^[a-z0-9]([a-z0-9-]{1,38}[a-z0-9])$'),
    user_id UUID NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    project_id UUID NOT NULL,
    build UUID NOT NULL UNIQUE,
    bytes BIGINT NOT NULL CHECK (bytes >= 0),
    files INTEGER NOT NULL CHECK (files >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    published_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sites_by_user ON sites (user_id);
