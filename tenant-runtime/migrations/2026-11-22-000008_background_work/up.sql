-- Indexing is a background job: a document is stored first ('indexing'), then its job
-- indexes it ('indexed') or records why it could not ('failed', with `error`).
ALTER TABLE documents ADD COLUMN status TEXT NOT NULL DEFAULT 'indexed'
    CHECK (status IN ('indexing', 'indexed', 'failed'));
ALTER TABLE documents ADD COLUMN error TEXT;

-- Every job lists its steps in order, each with its state: a JSON array of
-- {"name", "label", "state", "message"?}. Generations recorded before this list them too.
ALTER TABLE jobs ADD COLUMN steps TEXT NOT NULL DEFAULT '[]';
UPDATE jobs SET steps = (
    SELECT json_group_array(json_object(
        'name', s.value ->> '$[0]',
        'label', s.value ->> '$[1]',
        'state', CASE jobs.status WHEN 'succeeded' THEN 'done' ELSE 'pending' END))
    FROM json_each('[["plan","Plan: choose the pages"],["content","Content: write the text"],["seo","SEO: titles and descriptions"],["layout","Layout: navigation and theme"],["code","Code: build HTML and CSS"],["review","Review: check the result"]]') AS s
)
WHERE kind = 'generate_site';
