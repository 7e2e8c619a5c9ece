-- Neutron v2.0. Every resource (network, subnet, subnetpool, port, security_group,
-- security_group_rule, router, floatingip, …) is one row of network_resource: its attributes
-- as Neutron shows them are a JSON document, since they are always read and written whole and
-- filtered on any attribute; the columns beside it are what every resource has. What Neutron
-- guarantees to be unique is enforced by the database itself, so replicas sharing PostgreSQL
-- can never hand out the same thing twice: addresses per subnet, MACs per network, segment ids
-- per network type and physical network, one default security group per project.
-- Times are microseconds since the epoch.

CREATE TABLE network_resource (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    doc TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    revision_number BIGINT NOT NULL,
    PRIMARY KEY (kind, id)
);
CREATE INDEX network_resource_project ON network_resource (kind, project_id);

CREATE TABLE network_ip_allocation (
    subnet_id TEXT NOT NULL,
    ip_address TEXT NOT NULL,
    network_id TEXT NOT NULL,
    port_id TEXT NOT NULL,
    PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX network_ip_allocation_port ON network_ip_allocation (port_id);

CREATE TABLE network_mac (
    network_id TEXT NOT NULL,
    mac_address TEXT NOT NULL,
    port_id TEXT NOT NULL,
    PRIMARY KEY (network_id, mac_address)
);
CREATE INDEX network_mac_port ON network_mac (port_id);

CREATE TABLE network_segment (
    network_type TEXT NOT NULL,
    physical_network TEXT NOT NULL,
    segmentation_id BIGINT NOT NULL,
    network_id TEXT NOT NULL,
    PRIMARY KEY (network_type, physical_network, segmentation_id)
);
CREATE INDEX network_segment_network ON network_segment (network_id);

CREATE TABLE network_default_sg (
    project_id TEXT PRIMARY KEY,
    security_group_id TEXT NOT NULL
);

CREATE TABLE network_quota (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource)
);
