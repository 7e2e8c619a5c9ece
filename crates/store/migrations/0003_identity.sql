-- Keystone v3: domains, projects, users and passwords, groups, roles and implied roles,
-- assignments, the catalog, application credentials, revocation events and signing keys.
CREATE TABLE identity_domain (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    enabled BIGINT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    options TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX identity_domain_name ON identity_domain (name);

CREATE TABLE identity_project (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL,
    parent_id TEXT,
    description TEXT NOT NULL DEFAULT '',
    enabled BIGINT NOT NULL,
    tags TEXT NOT NULL DEFAULT '[]',
    options TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX identity_project_name ON identity_project (domain_id, name);
CREATE INDEX identity_project_parent ON identity_project (parent_id);

CREATE TABLE identity_user (
    id TEXT PRIMARY KEY,
    domain_id TEXT NOT NULL,
    name TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    default_project_id TEXT,
    description TEXT,
    options TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    failed_auth_count BIGINT NOT NULL DEFAULT 0,
    failed_auth_at BIGINT,
    last_active_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX identity_user_name ON identity_user (domain_id, name);

CREATE TABLE identity_password (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    hash TEXT NOT NULL,
    self_service BIGINT NOT NULL DEFAULT 0,
    expires_at BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX identity_password_user ON identity_password (user_id, created_at);

CREATE TABLE identity_group (
    id TEXT PRIMARY KEY,
    domain_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX identity_group_name ON identity_group (domain_id, name);

CREATE TABLE identity_group_member (
    group_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX identity_group_member_user ON identity_group_member (user_id);

-- domain_id is '' for global roles so that the unique index covers them.
CREATE TABLE identity_role (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    domain_id TEXT NOT NULL DEFAULT '',
    description TEXT,
    options TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX identity_role_name ON identity_role (domain_id, name);

CREATE TABLE identity_implied_role (
    prior_role_id TEXT NOT NULL,
    implied_role_id TEXT NOT NULL,
    PRIMARY KEY (prior_role_id, implied_role_id)
);

-- kind: UserProject, GroupProject, UserDomain, GroupDomain, UserSystem, GroupSystem.
-- target_id is 'system' for system assignments.
CREATE TABLE identity_assignment (
    kind TEXT NOT NULL,
    actor_id TEXT NOT NULL,
    target_id TEXT NOT NULL,
    role_id TEXT NOT NULL,
    inherited BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, actor_id, target_id, role_id, inherited)
);
CREATE INDEX identity_assignment_actor ON identity_assignment (actor_id);
CREATE INDEX identity_assignment_target ON identity_assignment (target_id);
CREATE INDEX identity_assignment_role ON identity_assignment (role_id);

CREATE TABLE identity_region (
    id TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    parent_region_id TEXT,
    extra TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE identity_service (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    description TEXT,
    enabled BIGINT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);

CREATE TABLE identity_endpoint (
    id TEXT PRIMARY KEY,
    service_id TEXT NOT NULL,
    interface TEXT NOT NULL,
    url TEXT NOT NULL,
    region_id TEXT,
    enabled BIGINT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX identity_endpoint_service ON identity_endpoint (service_id);

CREATE TABLE identity_app_cred (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    user_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    description TEXT,
    expires_at BIGINT,
    unrestricted BIGINT NOT NULL DEFAULT 0,
    roles TEXT NOT NULL DEFAULT '[]',
    access_rules TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX identity_app_cred_name ON identity_app_cred (user_id, name);

-- A token is revoked when every non-null field matches it and it was issued at or before
-- issued_before (Keystone's revocation-event model).
CREATE TABLE identity_revocation (
    id TEXT PRIMARY KEY,
    audit_id TEXT,
    user_id TEXT,
    project_id TEXT,
    domain_id TEXT,
    app_cred_id TEXT,
    issued_before BIGINT NOT NULL,
    revoked_at BIGINT NOT NULL
);

CREATE TABLE identity_signing_key (
    id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
