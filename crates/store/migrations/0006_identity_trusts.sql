-- Keystone v3 OS-TRUST: a trustor delegates some of their roles on a project to a trustee, who
-- may then get tokens scoped to the trust; and revocation events that name a trust, so that
-- deleting one revokes the tokens issued under it at once.

-- Deleted trusts are removed (Keystone soft-deletes them but never shows deleted ones).
-- expires_at is microseconds since the epoch, NULL for no expiry. remaining_uses is NULL for
-- unlimited; it counts down as tokens are issued. redelegated_trust_id names the trust this one
-- was redelegated from (NULL for a trust made by its trustor directly).
CREATE TABLE identity_trust (
    id TEXT PRIMARY KEY,
    trustor_user_id TEXT NOT NULL,
    trustee_user_id TEXT NOT NULL,
    project_id TEXT,
    impersonation BIGINT NOT NULL,
    expires_at BIGINT,
    remaining_uses BIGINT,
    redelegated_trust_id TEXT,
    redelegation_count BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
-- Keystone's duplicate_trust_constraint. NULLs are distinct, so trusts without a project or an
-- expiry never collide on those columns (as in Keystone).
CREATE UNIQUE INDEX identity_trust_unique
    ON identity_trust (trustor_user_id, trustee_user_id, project_id, impersonation, expires_at);
CREATE INDEX identity_trust_trustor ON identity_trust (trustor_user_id);
CREATE INDEX identity_trust_trustee ON identity_trust (trustee_user_id);
CREATE INDEX identity_trust_project ON identity_trust (project_id);
CREATE INDEX identity_trust_redelegated ON identity_trust (redelegated_trust_id);

-- The roles a trust delegates, as given (implied roles are added when a token is made).
CREATE TABLE identity_trust_role (
    trust_id TEXT NOT NULL,
    role_id TEXT NOT NULL,
    PRIMARY KEY (trust_id, role_id)
);

ALTER TABLE identity_revocation ADD COLUMN trust_id TEXT;
