-- Notes: short texts the platform's end-to-end tests write and read back to prove a
-- workspace keeps its data. Ids only grow (AUTOINCREMENT): a deleted note's id is never reused.
CREATE TABLE notes (
    id         INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    text       TEXT    NOT NULL,
    created_at TEXT    NOT NULL
);
