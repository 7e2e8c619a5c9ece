-- Glance v2 image members (sharing): which projects a `shared` image is offered to and whether
-- each accepted it. One row per (image, member project); status is pending, accepted or
-- rejected. Rows go with their image (deleted in the same transaction as the image row).
-- Times are microseconds since the epoch.

CREATE TABLE image_member (
    image_id TEXT NOT NULL,
    member_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (image_id, member_id)
);
CREATE INDEX image_member_member ON image_member (member_id);
