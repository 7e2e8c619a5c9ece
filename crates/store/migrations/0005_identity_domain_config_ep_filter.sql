-- Keystone v3 domain-specific configuration (`/v3/domains/{id}/config`) and the OS-EP-FILTER
-- extension: endpoint groups and the project associations that filter a project's catalog.

-- One row per option. value is the option's JSON value as the client gave it. sensitive rows
-- (Keystone's sensitive_config table: the LDAP password) are stored but never shown.
-- TODO-security: sensitive values are stored in the clear, as Keystone does.
CREATE TABLE identity_domain_config (
    domain_id TEXT NOT NULL,
    config_group TEXT NOT NULL,
    config_option TEXT NOT NULL,
    value TEXT NOT NULL,
    sensitive BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (domain_id, config_group, config_option)
);

-- filters is a JSON object over interface, service_id and region_id.
CREATE TABLE identity_endpoint_group (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    filters TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);

-- project_id may name a project acting as a domain.
CREATE TABLE identity_project_endpoint (
    project_id TEXT NOT NULL,
    endpoint_id TEXT NOT NULL,
    PRIMARY KEY (project_id, endpoint_id)
);
CREATE INDEX identity_project_endpoint_endpoint ON identity_project_endpoint (endpoint_id);

CREATE TABLE identity_project_endpoint_group (
    project_id TEXT NOT NULL,
    endpoint_group_id TEXT NOT NULL,
    PRIMARY KEY (project_id, endpoint_group_id)
);
CREATE INDEX identity_project_endpoint_group_group
    ON identity_project_endpoint_group (endpoint_group_id);
