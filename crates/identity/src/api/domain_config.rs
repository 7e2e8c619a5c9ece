//! `/v3/domains/{domain_id}/config[/{group}[/{option}]]` and `/v3/domains/config/…/default`:
//! Keystone's domain-specific configuration.
//!
//! As in Keystone, only the options that select and configure a domain's identity driver are
//! accepted: `identity.driver`, `identity.list_limit` and a fixed list of `ldap` options, plus
//! the sensitive `ldap.password`, which is stored but never shown. Anything else is refused with
//! Keystone's `InvalidDomainConfig` (403). Values are kept as the JSON the client sent (Keystone
//! pickles them), so `list_limit: 5` reads back as a number.
//!
//! Strata has one identity driver (SQL): the configuration is stored and served for clients and
//! tooling that manage it, it does not change how the domain's users are looked up.
//!
//! The read-only `security_compliance` group of the default domain shows the password rules of
//! `[security_compliance]` to any authenticated caller, as Keystone does.

use crate::db::{self, domain_config::ConfigOption};
use crate::error::{KsError, KsResult};
use crate::extract::{Auth, KsJson};
use crate::policy::{admin, admin_or_system_reader, enforce};
use crate::Identity;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use strata_api::AuthContext;

pub fn routes() -> Router<Identity> {
    Router::new()
        .route("/v3/domains/config/default", get(config_default_show))
        .route(
            "/v3/domains/config/{group}/default",
            get(config_default_group_show),
        )
        .route(
            "/v3/domains/config/{group}/{option}/default",
            get(config_default_option_show),
        )
        .route(
            "/v3/domains/{domain_id}/config",
            get(config_show)
                .put(config_create)
                .patch(config_update)
                .delete(config_delete),
        )
        .route(
            "/v3/domains/{domain_id}/config/{group}",
            get(config_group_show)
                .patch(config_group_update)
                .delete(config_group_delete),
        )
        .route(
            "/v3/domains/{domain_id}/config/{group}/{option}",
            get(config_option_show)
                .patch(config_option_update)
                .delete(config_option_delete),
        )
}

// ---- Keystone's option lists ---------------------------------------------------------------

/// The options of `[identity]` a domain may override, with Keystone's defaults (JSON).
const IDENTITY_OPTIONS: &[(&str, &str)] = &[("driver", r#""sql""#), ("list_limit", "null")];

/// The options of `[ldap]` a domain may override, with Keystone's defaults (JSON), in
/// Keystone's order.
const LDAP_OPTIONS: &[(&str, &str)] = &[
    ("url", r#""ldap://localhost""#),
    ("user", "null"),
    ("suffix", r#""cn=example,cn=com""#),
    ("query_scope", r#""one""#),
    ("page_size", "0"),
    ("alias_dereferencing", r#""default""#),
    ("debug_level", "null"),
    ("chase_referrals", "null"),
    ("user_tree_dn", "null"),
    ("user_filter", "null"),
    ("user_objectclass", r#""inetOrgPerson""#),
    ("user_id_attribute", r#""cn""#),
    ("user_name_attribute", r#""sn""#),
    ("user_mail_attribute", r#""mail""#),
    ("user_description_attribute", r#""description""#),
    ("user_pass_attribute", r#""userPassword""#),
    ("user_enabled_attribute", r#""enabled""#),
    ("user_enabled_invert", "false"),
    ("user_enabled_mask", "0"),
    ("user_enabled_default", r#""True""#),
    ("user_attribute_ignore", r#"["default_project_id"]"#),
    ("user_default_project_id_attribute", "null"),
    ("user_enabled_emulation", "false"),
    ("user_enabled_emulation_dn", "null"),
    ("user_enabled_emulation_use_group_config", "false"),
    ("user_additional_attribute_mapping", "[]"),
    ("group_tree_dn", "null"),
    ("group_filter", "null"),
    ("group_objectclass", r#""groupOfNames""#),
    ("group_id_attribute", r#""cn""#),
    ("group_name_attribute", r#""ou""#),
    ("group_members_are_ids", "false"),
    ("group_member_attribute", r#""member""#),
    ("group_desc_attribute", r#""description""#),
    ("group_attribute_ignore", "[]"),
    ("group_additional_attribute_mapping", "[]"),
    ("tls_cacertfile", "null"),
    ("tls_cacertdir", "null"),
    ("use_tls", "false"),
    ("tls_req_cert", r#""demand""#),
    ("use_pool", "true"),
    ("pool_size", "10"),
    ("pool_retry_max", "3"),
    ("pool_retry_delay", "0.1"),
    ("pool_connection_timeout", "-1"),
    ("pool_connection_lifetime", "600"),
    ("use_auth_pool", "true"),
    ("auth_pool_size", "100"),
    ("auth_pool_connection_lifetime", "60"),
];

/// The groups, in Keystone's order.
const GROUPS: &[&str] = &["identity", "ldap"];

/// The read-only group of the default domain.
const SECURITY_COMPLIANCE: &str = "security_compliance";

fn whitelisted(group: &str) -> &'static [(&'static str, &'static str)] {
    match group {
        "identity" => IDENTITY_OPTIONS,
        "ldap" => LDAP_OPTIONS,
        _ => &[],
    }
}

/// Options stored apart and never shown.
fn is_sensitive(group: &str, option: &str) -> bool {
    group == "ldap" && option == "password"
}

fn default_of(json_text: &str) -> Value {
    serde_json::from_str(json_text).expect("option defaults are valid JSON")
}

// ---- errors --------------------------------------------------------------------------------

/// Keystone's `InvalidDomainConfig` (403).
fn invalid(reason: impl std::fmt::Display) -> KsError {
    KsError::forbidden_msg(format!("Invalid domain specific configuration: {reason}."))
}

/// Keystone's `DomainConfigNotFound`.
fn config_not_found(domain_id: &str, group: Option<&str>, option: Option<&str>) -> KsError {
    let what = match (group, option) {
        (Some(g), Some(o)) => format!("option {o} in group {g}"),
        (Some(g), None) => format!("group {g}"),
        _ => "any options".to_string(),
    };
    KsError::new(
        StatusCode::NOT_FOUND,
        format!("Could not find {what} in domain configuration for domain {domain_id}."),
    )
}

/// Keystone's `_assert_valid_group_and_option`.
fn check_group_option(group: Option<&str>, option: Option<&str>) -> KsResult<()> {
    let Some(group) = group else {
        return Ok(());
    };
    if !GROUPS.contains(&group) {
        return Err(invalid(format!(
            "Group {group} is not supported for domain specific configurations"
        )));
    }
    if let Some(option) = option {
        if !whitelisted(group).iter().any(|(o, _)| *o == option) && !is_sensitive(group, option) {
            return Err(invalid(format!(
                "Option {option} in group {group} is not supported for domain specific configurations"
            )));
        }
    }
    Ok(())
}

/// Keystone's `_assert_valid_config` and `_config_to_list`: a non-empty object of non-empty
/// group objects of supported options.
fn parse_config(config: &Value) -> KsResult<Vec<ConfigOption>> {
    let groups = match config {
        Value::Object(m) if !m.is_empty() => m,
        _ => return Err(invalid("No options specified")),
    };
    let mut out = Vec::new();
    for (group, options) in groups {
        let options = match options {
            Value::Object(o) if !o.is_empty() => o,
            _ => {
                return Err(invalid(format!(
                    "The value of group {group} specified in the config should be a dictionary of options"
                )))
            }
        };
        for (option, value) in options {
            check_group_option(Some(group), Some(option))?;
            out.push(ConfigOption {
                group: group.clone(),
                option: option.clone(),
                value: value.clone(),
                sensitive: is_sensitive(group, option),
            });
        }
    }
    Ok(out)
}

// ---- views ---------------------------------------------------------------------------------

/// The shown (non-sensitive) options of `opts` matching `group`/`option`, as Keystone's
/// `_list_to_config`: `{group: {option: value}}`, or `{option: value}` when one option was
/// asked for.
fn render(opts: &[ConfigOption], group: Option<&str>, option: Option<&str>) -> Option<Value> {
    let shown: Vec<&ConfigOption> = opts
        .iter()
        .filter(|o| !o.sensitive)
        .filter(|o| group.is_none_or(|g| o.group == g))
        .filter(|o| option.is_none_or(|x| o.option == x))
        .collect();
    if shown.is_empty() {
        return None;
    }
    if option.is_some() {
        let o = shown[0];
        return Some(json!({ o.option.clone(): o.value }));
    }
    let mut groups = Map::new();
    for o in shown {
        groups
            .entry(o.group.clone())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(o.option.clone(), o.value.clone());
    }
    Some(Value::Object(groups))
}

fn config_response(status: StatusCode, config: Value) -> Response {
    (status, axum::Json(json!({ "config": config }))).into_response()
}

async fn require_domain(id: &Identity, did: &str) -> KsResult<()> {
    match db::domains::get(id.store(), did).await? {
        Some(_) => Ok(()),
        None => Err(KsError::not_found("domain", did)),
    }
}

// ---- reads ---------------------------------------------------------------------------------

/// `security_compliance` of the default domain: the password rules, to anyone authenticated.
fn security_compliance(id: &Identity, did: &str, option: Option<&str>) -> KsResult<Response> {
    if did != "default" {
        return Err(invalid(
            "Reading security compliance information for any domain other than the default \
             domain is not allowed or supported",
        ));
    }
    let sc = id.sc();
    let text = |s: &str| if s.is_empty() { Value::Null } else { json!(s) };
    let values = [
        ("password_regex", text(&sc.password_regex)),
        (
            "password_regex_description",
            text(&sc.password_regex_description),
        ),
    ];
    let config = match option {
        Some(o) => {
            let Some((_, v)) = values.iter().find(|(k, _)| *k == o) else {
                return Err(invalid(
                    "Reading security compliance values other than password_regex and \
                     password_regex_description is not allowed",
                ));
            };
            json!({ o: v })
        }
        None => {
            let group: Map<String, Value> = values
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            json!({ SECURITY_COMPLIANCE: group })
        }
    };
    Ok(config_response(StatusCode::OK, config))
}

async fn show(
    id: &Identity,
    ctx: &AuthContext,
    did: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> KsResult<Response> {
    if group == Some(SECURITY_COMPLIANCE) {
        // `identity:get_security_compliance_domain_config` is open to everyone.
        return security_compliance(id, did, option);
    }
    enforce("identity:get_domain_config", admin_or_system_reader(ctx))?;
    check_group_option(group, option)?;
    require_domain(id, did).await?;
    let opts = db::domain_config::list(id.store(), did).await?;
    let config =
        render(&opts, group, option).ok_or_else(|| config_not_found(did, group, option))?;
    Ok(config_response(StatusCode::OK, config))
}

async fn config_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(did): Path<String>,
) -> KsResult<Response> {
    show(&id, &ctx, &did, None, None).await
}

async fn config_group_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((did, group)): Path<(String, String)>,
) -> KsResult<Response> {
    show(&id, &ctx, &did, Some(&group), None).await
}

async fn config_option_show(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((did, group, option)): Path<(String, String, String)>,
) -> KsResult<Response> {
    show(&id, &ctx, &did, Some(&group), Some(&option)).await
}

// ---- writes --------------------------------------------------------------------------------

#[derive(Deserialize)]
pub struct ConfigBody {
    #[serde(default)]
    config: Value,
}

/// `PUT /v3/domains/{domain_id}/config`: replaces the whole configuration; 201 when the domain
/// had none, 200 when one was replaced (Keystone).
async fn config_create(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(did): Path<String>,
    KsJson(body): KsJson<ConfigBody>,
) -> KsResult<Response> {
    enforce("identity:create_domain_config", admin(&ctx))?;
    require_domain(&id, &did).await?;
    let opts = parse_config(&body.config)?;
    let existed = db::domain_config::replace(id.store(), &did, &opts).await?;
    id.changed().await?;
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(config_response(
        status,
        render(&opts, None, None).unwrap_or_else(|| json!({})),
    ))
}

/// Keystone's `update_config`: merges options into the configuration. Naming a group (and
/// option) in the path limits the update to it, which must then be all the body holds and must
/// already be configured. Answers the whole (shown) configuration.
async fn update(
    id: &Identity,
    ctx: &AuthContext,
    did: &str,
    group: Option<&str>,
    option: Option<&str>,
    config: Value,
) -> KsResult<Response> {
    enforce("identity:update_domain_config", admin(ctx))?;
    require_domain(id, did).await?;
    // For one option the body is `{option: value}`: seen as that option under the group.
    let config = match (group, option) {
        (Some(g), Some(_)) => json!({ g: config }),
        _ => config,
    };
    let opts = parse_config(&config)?;
    check_group_option(group, option)?;
    if let Some(g) = group {
        let groups = config.as_object().expect("checked by parse_config");
        let one_option = groups.get(g).and_then(Value::as_object).map(Map::len);
        if groups.len() != 1 || (option.is_some() && one_option.is_some_and(|n| n != 1)) {
            return Err(invalid(match option {
                // Keystone's message, double space included.
                Some(o) => format!(
                    "Trying to update option {o} in group {g}, so that, and only that, option \
                     must be specified  in the config"
                ),
                None => format!(
                    "Trying to update group {g}, so that, and only that, group must be specified \
                     in the config"
                ),
            }));
        }
        let Some(options) = groups.get(g).and_then(Value::as_object) else {
            let other = groups.keys().next().cloned().unwrap_or_default();
            return Err(invalid(format!(
                "request to update group {g}, but config provided contains group {other} instead"
            )));
        };
        if let Some(o) = option {
            if !options.contains_key(o) {
                let other = options.keys().next().cloned().unwrap_or_default();
                return Err(invalid(format!(
                    "Trying to update option {o} in group {g}, but config provided contains \
                     option {other} instead"
                )));
            }
        }
    }
    let store = id.store();
    let require = group.map(|g| (g, option));
    if !db::domain_config::update(store, did, &opts, require).await? {
        return Err(config_not_found(did, group, option));
    }
    id.changed().await?;
    let all = db::domain_config::list(store, did).await?;
    Ok(config_response(
        StatusCode::OK,
        render(&all, None, None).unwrap_or_else(|| json!({})),
    ))
}

async fn config_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(did): Path<String>,
    KsJson(body): KsJson<ConfigBody>,
) -> KsResult<Response> {
    update(&id, &ctx, &did, None, None, body.config).await
}

async fn config_group_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((did, group)): Path<(String, String)>,
    KsJson(body): KsJson<ConfigBody>,
) -> KsResult<Response> {
    update(&id, &ctx, &did, Some(&group), None, body.config).await
}

async fn config_option_update(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((did, group, option)): Path<(String, String, String)>,
    KsJson(body): KsJson<ConfigBody>,
) -> KsResult<Response> {
    update(&id, &ctx, &did, Some(&group), Some(&option), body.config).await
}

/// Keystone's `delete_config`: the whole configuration (no error when there is none), or a
/// group or option, which must be configured (404 otherwise).
async fn delete(
    id: &Identity,
    ctx: &AuthContext,
    did: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> KsResult<StatusCode> {
    enforce("identity:delete_domain_config", admin(ctx))?;
    require_domain(id, did).await?;
    check_group_option(group, option)?;
    if !db::domain_config::delete(id.store(), did, group, option).await? {
        return Err(config_not_found(did, group, option));
    }
    id.changed().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn config_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path(did): Path<String>,
) -> KsResult<StatusCode> {
    delete(&id, &ctx, &did, None, None).await
}

async fn config_group_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((did, group)): Path<(String, String)>,
) -> KsResult<StatusCode> {
    delete(&id, &ctx, &did, Some(&group), None).await
}

async fn config_option_delete(
    State(id): State<Identity>,
    Auth(ctx): Auth,
    Path((did, group, option)): Path<(String, String, String)>,
) -> KsResult<StatusCode> {
    delete(&id, &ctx, &did, Some(&group), Some(&option)).await
}

// ---- defaults ------------------------------------------------------------------------------

/// Keystone's `get_config_default`: the defaults of every shown option, of a group, or of one
/// option (a sensitive option has no readable default).
fn defaults(group: Option<&str>, option: Option<&str>) -> KsResult<Value> {
    check_group_option(group, option)?;
    if let (Some(g), Some(o)) = (group, option) {
        let Some((_, d)) = whitelisted(g).iter().find(|(name, _)| *name == o) else {
            return Err(invalid(format!(
                "Reading the default for option {o} in group {g} is not supported"
            )));
        };
        return Ok(json!({ o: default_of(d) }));
    }
    let mut out = Map::new();
    for g in GROUPS.iter().filter(|g| group.is_none_or(|x| x == **g)) {
        let opts: Map<String, Value> = whitelisted(g)
            .iter()
            .map(|(o, d)| (o.to_string(), default_of(d)))
            .collect();
        out.insert(g.to_string(), Value::Object(opts));
    }
    Ok(Value::Object(out))
}

async fn config_default_show(Auth(ctx): Auth) -> KsResult<Response> {
    enforce(
        "identity:get_domain_config_default",
        admin_or_system_reader(&ctx),
    )?;
    Ok(config_response(StatusCode::OK, defaults(None, None)?))
}

async fn config_default_group_show(
    Auth(ctx): Auth,
    Path(group): Path<String>,
) -> KsResult<Response> {
    enforce(
        "identity:get_domain_config_default",
        admin_or_system_reader(&ctx),
    )?;
    Ok(config_response(
        StatusCode::OK,
        defaults(Some(&group), None)?,
    ))
}

async fn config_default_option_show(
    Auth(ctx): Auth,
    Path((group, option)): Path<(String, String)>,
) -> KsResult<Response> {
    enforce(
        "identity:get_domain_config_default",
        admin_or_system_reader(&ctx),
    )?;
    Ok(config_response(
        StatusCode::OK,
        defaults(Some(&group), Some(&option))?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_cover_every_option() {
        let all = defaults(None, None).unwrap();
        assert_eq!(all["identity"]["driver"], "sql");
        assert_eq!(all["identity"]["list_limit"], Value::Null);
        assert_eq!(all["ldap"]["pool_retry_delay"], 0.1);
        assert_eq!(
            all["ldap"].as_object().unwrap().len(),
            LDAP_OPTIONS.len(),
            "no duplicate option names"
        );
        assert!(all["ldap"].get("password").is_none(), "sensitive");
        assert_eq!(
            defaults(Some("ldap"), Some("url")).unwrap(),
            json!({"url": "ldap://localhost"})
        );
        for (g, o) in [
            ("ldap", Some("password")),
            ("nova", None),
            ("ldap", Some("x")),
        ] {
            assert_eq!(
                defaults(Some(g), o).unwrap_err().status,
                StatusCode::FORBIDDEN
            );
        }
    }

    #[test]
    fn configs_are_validated_as_keystone_does() {
        let ok = parse_config(&json!({"identity": {"driver": "ldap"}, "ldap": {"password": "s"}}))
            .unwrap();
        assert_eq!(ok.len(), 2);
        assert!(ok.iter().any(|o| o.option == "password" && o.sensitive));
        for bad in [
            json!({}),
            json!(null),
            json!({"identity": {}}),
            json!({"identity": "sql"}),
            json!({"nova": {"x": 1}}),
            json!({"identity": {"password": "x"}}),
        ] {
            assert_eq!(
                parse_config(&bad).unwrap_err().status,
                StatusCode::FORBIDDEN,
                "{bad}"
            );
        }
    }

    #[test]
    fn sensitive_options_are_never_rendered() {
        let opts = parse_config(&json!({"ldap": {"password": "s", "url": "u"}})).unwrap();
        assert_eq!(
            render(&opts, None, None).unwrap(),
            json!({"ldap": {"url": "u"}})
        );
        assert_eq!(render(&opts, Some("ldap"), Some("password")), None);
        assert_eq!(
            render(&opts, Some("ldap"), Some("url")).unwrap(),
            json!({"url": "u"})
        );
    }
}
