-- The global revision counter and the change log (see crates/store/src/lib.rs).
CREATE TABLE revision_counter (id BIGINT PRIMARY KEY, value BIGINT NOT NULL);
INSERT INTO revision_counter (id, value) VALUES (1, 0);
CREATE TABLE change_log (
    revision BIGINT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    op TEXT NOT NULL,
    at BIGINT NOT NULL,
    PRIMARY KEY (revision, seq)
);
CREATE INDEX change_log_kind ON change_log (kind, revision);
