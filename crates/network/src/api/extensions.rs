//! `GET /v2.0/extensions`: exactly the extensions whose behaviour is implemented, with
//! Neutron's aliases; any other alias is 404.

use crate::error::{NeutronError, NeutronResult};
use crate::extract::Auth;
use axum::extract::Path;
use axum::Json;
use http::StatusCode;
use serde_json::{json, Value};

/// `(alias, name, description)` of every implemented extension.
pub const EXTENSIONS: &[(&str, &str, &str)] = &[
    ("project-id", "project-id field", "Extension that indicates that project_id field is enabled."),
    ("standard-attr-description", "standard-attr-description", "Extension to add descriptions to standard attributes"),
    ("standard-attr-timestamp", "Resource timestamps", "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes."),
    ("standard-attr-revisions", "Resource revision numbers", "This extension will display the revision number of neutron resources."),
    ("pagination", "Pagination support", "Extension that indicates that pagination is enabled."),
    ("sorting", "Sorting support", "Extension that indicates that sorting is enabled."),
    ("fields", "Fields filter", "Extension that indicates the fields filter is supported."),
    ("filter-validation", "Filter parameters validation", "Provides validation on filter parameters."),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("external-net", "Neutron external network", "Adds external network attribute to network resource."),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    ("port-security", "Port Security", "Provides port security"),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    ("security-group", "security-group", "The security groups extension."),
    ("quota_details", "Quota details management support", "Expose functions for quotas usage statistics per project"),
    ("standard-attr-tag", "Tag support for resources with standard attribute: subnet, trunk, network_segment_range, router, network, policy, subnetpool, port, security_group, floatingip", "Enables to set tag on resources with standard attribute."),
    ("subnet_allocation", "Subnet Allocation", "Enables allocation of subnets from a subnet pool"),
    ("router", "Neutron L3 Router", "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway."),
    ("extraroute", "Neutron Extra Route", "Extra routes configuration for L3 router"),
    ("ext-gw-mode", "Neutron L3 Configurable external gateway mode", "Extension of the router abstraction for specifying whether SNAT should occur on the external gateway"),
    ("default-subnetpools", "Default Subnetpools", "Provides ability to mark and use a subnetpool as the default."),
];

fn view((alias, name, description): &(&str, &str, &str)) -> Value {
    json!({"alias": alias, "name": name, "description": description,
           "updated": "2024-01-01T00:00:00-00:00", "links": []})
}

pub async fn extension_list(_auth: Auth) -> Json<Value> {
    Json(json!({"extensions": EXTENSIONS.iter().map(view).collect::<Vec<_>>()}))
}

pub async fn extension_show(_auth: Auth, Path(alias): Path<String>) -> NeutronResult<Json<Value>> {
    match EXTENSIONS.iter().find(|e| e.0 == alias) {
        Some(e) => Ok(Json(json!({"extension": view(e)}))),
        None => Err(NeutronError::new(
            StatusCode::NOT_FOUND,
            "HTTPNotFound",
            format!("Extension with alias {alias} does not exist"),
        )),
    }
}

/// `GET /v2.0/agents`: Strata runs no Neutron agents (the control plane realises networks
/// itself), so the list is empty for everyone; one agent by id is 404.
pub async fn agent_list(_auth: Auth) -> Json<Value> {
    Json(json!({"agents": []}))
}

pub async fn agent_show(_auth: Auth, Path(id): Path<String>) -> NeutronError {
    NeutronError::not_found("agent", &id)
}
