-- Uploaded documents; their passages live in the search index, their bytes in documents/.
CREATE TABLE documents (
    id         TEXT    NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    kind       TEXT    NOT NULL CHECK (kind IN ('pdf', 'docx', 'html', 'markdown', 'text')),
    size       INTEGER NOT NULL,
    sha256     TEXT    NOT NULL,
    pages      INTEGER NOT NULL,
    passages   INTEGER NOT NULL,
    created_at TEXT    NOT NULL
);
