-- Keystone v3 credentials (`/v3/credentials`, and the OS-EC2 view of the `ec2` ones), policy
-- blobs (`/v3/policies`) and OAuth1 consumers (`/v3/OS-OAUTH1/consumers`).

-- blob is the credential as the client gave it (a JSON string for `ec2`). ec2_access is the
-- `access` key of an `ec2` credential's blob (NULL for other types), kept in its own column so
-- EC2/S3 authentication finds a key with one indexed read and no two credentials share a key.
-- TODO-security: blob is stored in the clear; Keystone encrypts it at rest.
CREATE TABLE identity_credential (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    project_id TEXT,
    type TEXT NOT NULL,
    blob TEXT NOT NULL,
    ec2_access TEXT,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE INDEX identity_credential_user ON identity_credential (user_id);
CREATE UNIQUE INDEX identity_credential_ec2_access ON identity_credential (ec2_access);

CREATE TABLE identity_policy (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    blob TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);

-- secret is kept (not hashed) because OAuth1 request signing needs it on the server side.
CREATE TABLE identity_oauth_consumer (
    id TEXT PRIMARY KEY,
    description TEXT,
    secret TEXT NOT NULL,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
