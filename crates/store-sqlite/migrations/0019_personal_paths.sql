-- The `details` paths each account declares personal (SPEC "Leaf version
-- 2"): a JSON array of dotted paths such as ["details.assignee"], read by
-- the writer in the transaction that seals each request's events. No row:
-- nothing declared.
CREATE TABLE personal_paths (
    account_id  INTEGER PRIMARY KEY REFERENCES accounts(id),
    paths       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
