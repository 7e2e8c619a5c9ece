-- Keystone v3 application-credential access rules as rows of their own (Keystone's access_rule
-- and application_credential_access_rule tables). A user's rules are shared by their
-- credentials: the same service, method and path for one user is one rule (and one id). A rule
-- outlives the credentials that use it and may be deleted only when none does.
-- identity_app_cred.access_rules (0003) is no longer read or written.
-- ordinal keeps a credential's rules in the order its create request gave them.

CREATE TABLE identity_access_rule (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    service TEXT NOT NULL,
    method TEXT NOT NULL,
    path TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX identity_access_rule_user_rule
    ON identity_access_rule (user_id, service, method, path);

CREATE TABLE identity_app_cred_access_rule (
    app_cred_id TEXT NOT NULL,
    access_rule_id TEXT NOT NULL,
    ordinal BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (app_cred_id, access_rule_id)
);
CREATE INDEX identity_app_cred_access_rule_rule
    ON identity_app_cred_access_rule (access_rule_id);
