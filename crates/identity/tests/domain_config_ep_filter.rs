//! Domain-specific configuration, OS-EP-FILTER (endpoint groups, project associations and the
//! filtered token catalog), and projects acting as domains, end to end through the router on
//! SQLite and PostgreSQL.

mod common;

use common::{test_config, Stack};
use http::{Method, StatusCode};
use serde_json::{json, Value};

const V3: &str = "/identity/v3";

/// Creates a domain, returning its id.
async fn create_domain(s: &Stack, admin: &str, name: &str) -> String {
    let r = s
        .post(
            &format!("{V3}/domains"),
            admin,
            json!({"domain": {"name": name}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    r.json["domain"]["id"].as_str().unwrap().to_string()
}

/// Disables then deletes a domain.
async fn delete_domain(s: &Stack, admin: &str, did: &str) {
    let r = s
        .patch(
            &format!("{V3}/domains/{did}"),
            admin,
            json!({"domain": {"enabled": false}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let r = s.delete(&format!("{V3}/domains/{did}"), admin).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
}

/// A token of a user holding only `member` on a new project.
async fn member_token(s: &Stack, admin: &str, name: &str) -> String {
    let u = s.create_user(admin, name, "pw-member").await;
    let p = s.create_project(admin, &format!("{name}-project")).await;
    s.grant(&u, &p, "member").await;
    s.login(name, "pw-member", &format!("{name}-project")).await
}

async fn put_json(s: &Stack, path: &str, token: &str, body: Value) -> common::Resp {
    s.call(Method::PUT, path, Some(token), &[], Some(body))
        .await
}

async fn head(s: &Stack, path: &str, token: &str) -> StatusCode {
    s.call(Method::HEAD, path, Some(token), &[], None)
        .await
        .status
}

#[tokio::test]
async fn domain_config_defaults() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let r = s.get(&format!("{V3}/domains/config/default"), &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let c = &r.json["config"];
        assert_eq!(c["identity"]["driver"], "sql");
        assert!(c["identity"].get("list_limit").is_some());
        assert_eq!(c["ldap"]["url"], "ldap://localhost");
        assert!(c["ldap"].get("password").is_none(), "sensitive: no default");
        assert_eq!(c.as_object().unwrap().len(), 2);

        let r = s
            .get(&format!("{V3}/domains/config/ldap/default"), &admin)
            .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json["config"].as_object().unwrap().len(), 1);
        // Every option of the group has a readable default.
        for opt in r.json["config"]["ldap"].as_object().unwrap().keys() {
            let r = s
                .get(&format!("{V3}/domains/config/ldap/{opt}/default"), &admin)
                .await;
            assert_eq!(r.status, StatusCode::OK, "{opt}: {}", r.raw);
            assert!(r.json["config"].get(opt).is_some(), "{}", r.raw);
        }
        let r = s
            .get(
                &format!("{V3}/domains/config/identity/driver/default"),
                &admin,
            )
            .await;
        assert_eq!(r.json, json!({"config": {"driver": "sql"}}));

        // Keystone's InvalidDomainConfig is a 403.
        for path in [
            "domains/config/nova/default",
            "domains/config/security_compliance/default",
            "domains/config/ldap/nope/default",
            "domains/config/ldap/password/default",
        ] {
            let r = s.get(&format!("{V3}/{path}"), &admin).await;
            assert!(
                r.assert_error(StatusCode::FORBIDDEN)
                    .starts_with("Invalid domain specific configuration"),
                "{path}: {}",
                r.raw
            );
        }

        let member = member_token(&s, &admin, "dc-member").await;
        s.get(&format!("{V3}/domains/config/default"), &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn domain_config_lifecycle() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let l = s.label();
        let did = create_domain(&s, &admin, "ldap-domain").await;
        let cfg = |d: &str| format!("{V3}/domains/{d}/config");

        // Nothing configured yet.
        let r = s.get(&cfg(&did), &admin).await;
        assert!(r
            .assert_error(StatusCode::NOT_FOUND)
            .contains("Could not find any options in domain configuration"));

        // PUT creates (201); the password is stored but never shown.
        let custom = json!({
            "identity": {"driver": "ldap"},
            "ldap": {"url": "ldap://myldap.com:389/", "user_tree_dn": "ou=Users,dc=my_new_root,dc=org"},
        });
        let mut with_password = custom.clone();
        with_password["ldap"]["password"] = json!("s3cret");
        let r = put_json(&s, &cfg(&did), &admin, json!({"config": with_password})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
        assert_eq!(r.json["config"], custom);
        assert!(!r.raw.contains("s3cret"));
        let r = s.get(&cfg(&did), &admin).await;
        assert_eq!(r.json["config"], custom, "{}", r.raw);
        let r = s.get(&format!("{}/ldap", cfg(&did)), &admin).await;
        assert_eq!(r.json["config"], json!({"ldap": custom["ldap"]}));
        let r = s.get(&format!("{}/ldap/url", cfg(&did)), &admin).await;
        assert_eq!(r.json["config"], json!({"url": "ldap://myldap.com:389/"}));
        s.get(&format!("{}/ldap/password", cfg(&did)), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert_eq!(head(&s, &cfg(&did), &admin).await, StatusCode::OK);

        // PUT again replaces the whole configuration and answers 200.
        let r = put_json(
            &s,
            &cfg(&did),
            &admin,
            json!({"config": {"identity": {"driver": "ldap", "list_limit": 5}}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            r.json["config"],
            json!({"identity": {"driver": "ldap", "list_limit": 5}})
        );
        s.get(&format!("{}/ldap", cfg(&did)), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // PATCH of the whole configuration merges, adding groups.
        let r = s
            .patch(
                &cfg(&did),
                &admin,
                json!({"config": {"ldap": {"url": "ldap://a/"}, "identity": {"list_limit": 7}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            r.json["config"],
            json!({"identity": {"driver": "ldap", "list_limit": 7}, "ldap": {"url": "ldap://a/"}})
        );

        // PATCH of a group: only that group, which must be configured.
        let r = s
            .patch(
                &format!("{}/identity", cfg(&did)),
                &admin,
                json!({"config": {"identity": {"driver": "d2", "list_limit": 42}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["config"]["identity"]["driver"], "d2");
        assert_eq!(r.json["config"]["identity"]["list_limit"], 42);
        assert_eq!(
            r.json["config"]["ldap"]["url"], "ldap://a/",
            "the whole config"
        );
        let r = s
            .patch(
                &format!("{}/identity", cfg(&did)),
                &admin,
                json!({"config": {"ldap": {"url": "x"}}}),
            )
            .await;
        assert!(r
            .assert_error(StatusCode::FORBIDDEN)
            .contains("request to update group identity"));
        s.patch(
            &format!("{}/identity", cfg(&did)),
            &admin,
            json!({"config": {"identity": {"driver": "x"}, "ldap": {"url": "x"}}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);

        // PATCH of one option: the body holds only it; the option must be configured.
        let r = s
            .patch(
                &format!("{}/identity/driver", cfg(&did)),
                &admin,
                json!({"config": {"driver": "d3"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["config"]["identity"]["driver"], "d3");
        s.patch(
            &format!("{}/identity/driver", cfg(&did)),
            &admin,
            json!({"config": {"list_limit": 1}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        let r = s
            .patch(
                &format!("{}/ldap/user_filter", cfg(&did)),
                &admin,
                json!({"config": {"user_filter": "(x)"}}),
            )
            .await;
        assert!(r
            .assert_error(StatusCode::NOT_FOUND)
            .contains("option user_filter in group ldap"));
        // The sensitive option can be set alone and stays hidden.
        let r = s
            .patch(
                &cfg(&did),
                &admin,
                json!({"config": {"ldap": {"password": "pw2"}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert!(r.json["config"]["ldap"].get("password").is_none());
        let r = s
            .patch(
                &format!("{}/ldap/password", cfg(&did)),
                &admin,
                json!({"config": {"password": "pw3"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let stored = strata_identity::db::domain_config::list(&s.db.store, &did)
            .await
            .unwrap();
        let pw = stored.iter().find(|o| o.option == "password").unwrap();
        assert!(pw.sensitive);
        assert_eq!(pw.value, "pw3");

        // Unsupported groups and options are 403, as Keystone.
        for (path, body) in [
            (cfg(&did), json!({"config": {"nova": {"x": 1}}})),
            (cfg(&did), json!({"config": {"ldap": {"nope": 1}}})),
            (cfg(&did), json!({"config": {"ldap": {}}})),
            (cfg(&did), json!({"config": {}})),
            (cfg(&did), json!({})),
        ] {
            s.patch(&path, &admin, body.clone())
                .await
                .assert_error(StatusCode::FORBIDDEN);
            put_json(&s, &path, &admin, body)
                .await
                .assert_error(StatusCode::FORBIDDEN);
        }
        s.get(&format!("{}/nova", cfg(&did)), &admin)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(&format!("{}/ldap/nope", cfg(&did)), &admin)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Policy: admins only for writes; no config on a missing domain.
        let member = member_token(&s, &admin, "dc-member2").await;
        s.get(&cfg(&did), &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        put_json(&s, &cfg(&did), &member, json!({"config": custom}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.delete(&cfg(&did), &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        put_json(&s, &cfg("nope"), &admin, json!({"config": custom}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get(&cfg("nope"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // Deletes: an option, a group, then everything.
        let r = s
            .delete(&format!("{}/identity/driver", cfg(&did)), &admin)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.get(&format!("{}/identity/driver", cfg(&did)), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&format!("{}/identity/driver", cfg(&did)), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s.delete(&format!("{}/identity", cfg(&did)), &admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        s.get(&format!("{}/identity", cfg(&did)), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s.delete(&cfg(&did), &admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        s.get(&cfg(&did), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s.delete(&cfg(&did), &admin).await;
        assert_eq!(
            r.status,
            StatusCode::NO_CONTENT,
            "nothing left is not an error"
        );

        // Deleting the domain deletes its configuration, and none can be stored for it after.
        put_json(&s, &cfg(&did), &admin, json!({"config": with_password})).await;
        delete_domain(&s, &admin, &did).await;
        assert!(strata_identity::db::domain_config::list(&s.db.store, &did)
            .await
            .unwrap()
            .is_empty());
        let err = strata_identity::db::domain_config::replace(&s.db.store, &did, &[])
            .await
            .unwrap_err();
        assert!(
            matches!(err, strata_core::Error::NotFound { kind: "domain", .. }),
            "{err}"
        );
    }
}

#[tokio::test]
async fn security_compliance_is_readable_by_anyone_for_the_default_domain() {
    let mut cfg = test_config();
    cfg.security_compliance.password_regex = "^.{8,}$".into();
    cfg.security_compliance.password_regex_description = "8 characters or more".into();
    for s in Stack::all(cfg.clone()).await {
        let admin = s.admin().await;
        let member = member_token(&s, &admin, "sc-member").await;
        let base = format!("{V3}/domains/default/config/security_compliance");
        let r = s.get(&base, &member).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            r.json["config"],
            json!({"security_compliance": {"password_regex": "^.{8,}$",
                   "password_regex_description": "8 characters or more"}})
        );
        let r = s.get(&format!("{base}/password_regex"), &member).await;
        assert_eq!(r.json, json!({"config": {"password_regex": "^.{8,}$"}}));
        s.get(&format!("{base}/lockout_duration"), &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let other = create_domain(&s, &admin, "sc-other").await;
        s.get(
            &format!("{V3}/domains/{other}/config/security_compliance"),
            &admin,
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        s.patch(
            &base,
            &admin,
            json!({"config": {"security_compliance": {"password_regex": "x"}}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
    }
}

/// Creates a service, returning its id.
async fn create_service(s: &Stack, admin: &str, kind: &str) -> String {
    let r = s
        .post(
            &format!("{V3}/services"),
            admin,
            json!({"service": {"type": kind, "name": kind}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    r.json["service"]["id"].as_str().unwrap().to_string()
}

/// Creates an endpoint, returning its id.
async fn create_endpoint(s: &Stack, admin: &str, service: &str, interface: &str) -> String {
    let r = s
        .post(
            &format!("{V3}/endpoints"),
            admin,
            json!({"endpoint": {"service_id": service, "interface": interface,
                   "url": format!("http://{interface}.test/"), "region_id": "RegionOne"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    r.json["endpoint"]["id"].as_str().unwrap().to_string()
}

fn ids(v: &Value, key: &str) -> Vec<String> {
    let mut out: Vec<String> = v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

/// The endpoint ids of a token's catalog.
fn catalog_endpoint_ids(token_body: &Value) -> Vec<String> {
    let mut out: Vec<String> = token_body["token"]["catalog"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["endpoints"].as_array().unwrap().clone())
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[tokio::test]
async fn endpoint_groups_crud_and_validation() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let l = s.label();
        let base = format!("{V3}/OS-EP-FILTER/endpoint_groups");
        let svc = create_service(&s, &admin, "compute").await;

        let r = s
            .post(
                &base,
                &admin,
                json!({"endpoint_group": {"name": "g1", "description": "first",
                       "filters": {"service_id": svc}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
        let g1 = r.json["endpoint_group"].clone();
        let gid = g1["id"].as_str().unwrap().to_string();
        assert_eq!(g1["name"], "g1");
        assert_eq!(g1["description"], "first");
        assert_eq!(g1["filters"], json!({"service_id": svc}));
        assert!(g1["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/OS-EP-FILTER/endpoint_groups/{gid}")));
        let r = s
            .post(
                &base,
                &admin,
                json!({"endpoint_group": {"name": "g2", "filters": {"interface": "admin"}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(r.json["endpoint_group"]["description"], Value::Null);
        let g2 = r.json["endpoint_group"]["id"].as_str().unwrap().to_string();

        // List (all, by name), show, HEAD.
        let r = s.get(&base, &admin).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.json["endpoint_groups"].as_array().unwrap().contains(&g1));
        assert_eq!(ids(&r.json, "endpoint_groups").len(), 2);
        let r = s.get(&format!("{base}?name=g2"), &admin).await;
        assert_eq!(ids(&r.json, "endpoint_groups"), [g2.as_str()]);
        let r = s.get(&format!("{base}/{gid}"), &admin).await;
        assert_eq!(r.json["endpoint_group"], g1);
        assert_eq!(
            head(&s, &format!("{base}/{gid}"), &admin).await,
            StatusCode::OK
        );
        assert_eq!(
            head(&s, &format!("{base}/nope"), &admin).await,
            StatusCode::NOT_FOUND
        );
        assert!(s
            .get(&format!("{base}/nope"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .contains("Could not find Endpoint Group: nope"));

        // Refusals: empty or unknown filters, unknown attributes, bad types.
        for (body, status) in [
            (json!({"name": "x"}), StatusCode::BAD_REQUEST),
            (json!({"name": "x", "filters": {}}), StatusCode::BAD_REQUEST),
            (
                json!({"name": "x", "filters": {"enabled": true}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"name": "x", "filters": {"interface": "private"}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"filters": {"interface": "public"}}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"name": "x", "filters": {"interface": "public"}, "colour": "red"}),
                StatusCode::BAD_REQUEST,
            ),
        ] {
            s.post(&base, &admin, json!({ "endpoint_group": body }))
                .await
                .assert_error(status);
        }

        // Update: name, description, filters; refusals.
        let svc2 = create_service(&s, &admin, "network").await;
        let r = s
            .patch(
                &format!("{base}/{gid}"),
                &admin,
                json!({"endpoint_group": {"name": "g1b", "description": null,
                       "filters": {"service_id": svc2}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["endpoint_group"]["name"], "g1b");
        assert_eq!(r.json["endpoint_group"]["description"], Value::Null);
        assert_eq!(r.json["endpoint_group"]["filters"]["service_id"], svc2);
        s.patch(
            &format!("{base}/{gid}"),
            &admin,
            json!({"endpoint_group": {}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.patch(
            &format!("{base}/{gid}"),
            &admin,
            json!({"endpoint_group": {"filters": {"url": "x"}}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.patch(
            &format!("{base}/nope"),
            &admin,
            json!({"endpoint_group": {"name": "x"}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);

        // Policy.
        let member = member_token(&s, &admin, "eg-member").await;
        s.get(&base, &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.post(
            &base,
            &member,
            json!({"endpoint_group": {"name": "m", "filters": {"interface": "public"}}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        s.delete(&format!("{base}/{gid}"), &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Delete.
        let r = s.delete(&format!("{base}/{gid}"), &admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        s.delete(&format!("{base}/{gid}"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s.get(&base, &admin).await;
        assert_eq!(ids(&r.json, "endpoint_groups"), [g2]);
    }
}

#[tokio::test]
async fn endpoint_filter_associations_and_the_token_catalog() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let l = s.label();
        let ep_filter = format!("{V3}/OS-EP-FILTER");
        let svc = create_service(&s, &admin, "compute").await;
        let e_pub = create_endpoint(&s, &admin, &svc, "public").await;
        let e_adm = create_endpoint(&s, &admin, &svc, "admin").await;
        let svc2 = create_service(&s, &admin, "image").await;
        let e_img = create_endpoint(&s, &admin, &svc2, "public").await;

        let u = s.create_user(&admin, "filtered", "filtered-pw").await;
        let pid = s.create_project(&admin, "filtered-project").await;
        s.grant(&u, &pid, "member").await;
        let token_catalog = |tok: String| {
            let s = &s;
            let admin = admin.clone();
            async move {
                let r = s.validate(&admin, &tok).await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
                catalog_endpoint_ids(&r.json)
            }
        };
        let before =
            token_catalog(s.login("filtered", "filtered-pw", "filtered-project").await).await;
        assert!(before.contains(&e_pub) && before.contains(&e_img), "{l}");

        // Project ↔ endpoint: PUT, HEAD/GET, lists, duplicate, 404s.
        let pe = format!("{ep_filter}/projects/{pid}/endpoints/{e_pub}");
        assert_eq!(head(&s, &pe, &admin).await, StatusCode::NOT_FOUND);
        let r = s.put(&pe, &admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.put(&pe, &admin).await.assert_error(StatusCode::CONFLICT);
        assert_eq!(head(&s, &pe, &admin).await, StatusCode::NO_CONTENT);
        assert_eq!(s.get(&pe, &admin).await.status, StatusCode::NO_CONTENT);
        s.put(
            &format!("{ep_filter}/projects/nope/endpoints/{e_pub}"),
            &admin,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        s.put(
            &format!("{ep_filter}/projects/{pid}/endpoints/nope"),
            &admin,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        let r = s
            .get(&format!("{ep_filter}/projects/{pid}/endpoints"), &admin)
            .await;
        assert_eq!(ids(&r.json, "endpoints"), [e_pub.as_str()], "{}", r.raw);
        let r = s
            .get(&format!("{ep_filter}/endpoints/{e_pub}/projects"), &admin)
            .await;
        assert_eq!(ids(&r.json, "projects"), [pid.as_str()]);

        // The project's token catalog now holds only that endpoint.
        let tok = s.login("filtered", "filtered-pw", "filtered-project").await;
        assert_eq!(token_catalog(tok.clone()).await, [e_pub.as_str()]);
        let r = s.get(&format!("{V3}/auth/catalog"), &tok).await;
        assert_eq!(r.json["catalog"].as_array().unwrap().len(), 1, "{}", r.raw);
        // Other projects are not filtered.
        let admin_catalog = token_catalog(s.admin().await).await;
        assert!(admin_catalog.contains(&e_img));

        // An endpoint group associated with the project adds its endpoints.
        let r = s
            .post(
                &format!("{ep_filter}/endpoint_groups"),
                &admin,
                json!({"endpoint_group": {"name": "images", "filters": {"service_id": svc2}}}),
            )
            .await;
        let gid = r.json["endpoint_group"]["id"].as_str().unwrap().to_string();
        let gp = format!("{ep_filter}/endpoint_groups/{gid}/projects/{pid}");
        s.get(&gp, &admin).await.assert_error(StatusCode::NOT_FOUND);
        let r = s.put(&gp, &admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.put(&gp, &admin).await.assert_error(StatusCode::CONFLICT);
        let r = s.get(&gp, &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["project_endpoint_group"]["project_id"], pid.as_str());
        assert_eq!(
            r.json["project_endpoint_group"]["endpoint_group_id"],
            gid.as_str()
        );
        s.put(
            &format!("{ep_filter}/endpoint_groups/nope/projects/{pid}"),
            &admin,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        let r = s
            .get(
                &format!("{ep_filter}/endpoint_groups/{gid}/projects"),
                &admin,
            )
            .await;
        assert_eq!(ids(&r.json, "projects"), [pid.as_str()]);
        let r = s
            .get(
                &format!("{ep_filter}/endpoint_groups/{gid}/endpoints"),
                &admin,
            )
            .await;
        assert_eq!(ids(&r.json, "endpoints"), [e_img.as_str()], "{}", r.raw);
        let r = s
            .get(
                &format!("{ep_filter}/projects/{pid}/endpoint_groups"),
                &admin,
            )
            .await;
        assert_eq!(ids(&r.json, "endpoint_groups"), [gid.as_str()]);
        let r = s
            .get(&format!("{ep_filter}/projects/{pid}/endpoints"), &admin)
            .await;
        let mut want = vec![e_pub.clone(), e_img.clone()];
        want.sort();
        assert_eq!(ids(&r.json, "endpoints"), want);
        let tok = s.login("filtered", "filtered-pw", "filtered-project").await;
        assert_eq!(token_catalog(tok).await, want);

        // Reads are for admins and system readers.
        let member = member_token(&s, &admin, "ep-member").await;
        s.get(&format!("{ep_filter}/projects/{pid}/endpoints"), &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.put(&pe, &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Deleting the endpoint drops its association; deleting the group drops its.
        let r = s.delete(&format!("{V3}/endpoints/{e_pub}"), &admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = s
            .get(&format!("{ep_filter}/projects/{pid}/endpoints"), &admin)
            .await;
        assert_eq!(ids(&r.json, "endpoints"), [e_img.as_str()]);
        let r = s
            .delete(&format!("{ep_filter}/endpoint_groups/{gid}"), &admin)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = s
            .get(
                &format!("{ep_filter}/projects/{pid}/endpoint_groups"),
                &admin,
            )
            .await;
        assert_eq!(ids(&r.json, "endpoint_groups"), Vec::<String>::new());
        // No association left: the whole catalog again.
        let tok = s.login("filtered", "filtered-pw", "filtered-project").await;
        let all = token_catalog(tok).await;
        assert!(all.contains(&e_img) && all.contains(&e_adm), "{all:?}");

        // Removing an association; deleting a project drops its associations.
        let pe2 = format!("{ep_filter}/projects/{pid}/endpoints/{e_adm}");
        assert_eq!(s.put(&pe2, &admin).await.status, StatusCode::NO_CONTENT);
        assert_eq!(s.delete(&pe2, &admin).await.status, StatusCode::NO_CONTENT);
        s.delete(&pe2, &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert_eq!(s.put(&pe2, &admin).await.status, StatusCode::NO_CONTENT);
        let r = s.delete(&format!("{V3}/projects/{pid}"), &admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s
            .get(&format!("{ep_filter}/endpoints/{e_adm}/projects"), &admin)
            .await;
        assert_eq!(ids(&r.json, "projects"), Vec::<String>::new());
        // The store checks both ends in the writing transaction, whatever the handler saw.
        use strata_identity::db::endpoint_groups::{associate, Assoc};
        let err = associate(&s.db.store, Assoc::Endpoint, &pid, &e_adm)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                strata_core::Error::NotFound {
                    kind: "project",
                    ..
                }
            ),
            "{err}"
        );
        let err = associate(&s.db.store, Assoc::EndpointGroup, "default", "gone")
            .await
            .unwrap_err();
        assert!(matches!(err, strata_core::Error::NotFound { .. }), "{err}");
    }
}

#[tokio::test]
async fn projects_acting_as_domains() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let l = s.label();

        let r = s
            .post(
                &format!("{V3}/projects"),
                &admin,
                json!({"project": {"name": "dom-proj", "description": "d", "is_domain": true,
                       "domain_id": null}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
        let p = r.json["project"].clone();
        let did = p["id"].as_str().unwrap().to_string();
        assert_eq!(p["is_domain"], true);
        assert_eq!(p["domain_id"], Value::Null);
        assert_eq!(p["parent_id"], Value::Null);
        assert_eq!(p["name"], "dom-proj");
        assert_eq!(p["description"], "d");
        assert_eq!(p["enabled"], true);
        assert!(p["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/projects/{did}")));

        // It is a domain, listed by both APIs, and shown by the project API.
        let r = s.get(&format!("{V3}/domains/{did}"), &admin).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json["domain"]["name"], "dom-proj");
        let r = s
            .get(&format!("{V3}/projects?is_domain=True"), &admin)
            .await;
        assert!(ids(&r.json, "projects").contains(&did));
        let listed = r.json["projects"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == did.as_str())
            .unwrap()
            .clone();
        let r = s.get(&format!("{V3}/projects/{did}"), &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["project"], listed, "show equals list");
        let r = s.get(&format!("{V3}/projects"), &admin).await;
        assert!(
            !ids(&r.json, "projects").contains(&did),
            "not a plain project"
        );
        // Its projects see it as their parent and domain.
        let r = s
            .post(
                &format!("{V3}/projects"),
                &admin,
                json!({"project": {"name": "inner", "domain_id": did}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(r.json["project"]["parent_id"], did.as_str());
        let inner = r.json["project"]["id"].as_str().unwrap().to_string();
        let r = s
            .get(&format!("{V3}/projects/{did}?subtree_as_ids"), &admin)
            .await;
        assert_eq!(r.json["project"]["subtree"], json!({ inner.clone(): null }));

        // Refusals: not a root, a duplicate name, not for members.
        for body in [
            json!({"name": "x", "is_domain": true, "domain_id": "default"}),
            json!({"name": "x", "is_domain": true, "parent_id": inner}),
        ] {
            let r = s
                .post(
                    &format!("{V3}/projects"),
                    &admin,
                    json!({ "project": body }),
                )
                .await;
            assert!(r
                .assert_error(StatusCode::BAD_REQUEST)
                .contains("only root projects are allowed to act as domains"));
        }
        let r = s
            .post(
                &format!("{V3}/projects"),
                &admin,
                json!({"project": {"name": "dom-proj", "is_domain": true}}),
            )
            .await;
        assert!(r
            .assert_error(StatusCode::CONFLICT)
            .contains("acting as domains with the same name"));
        let member = member_token(&s, &admin, "dp-member").await;
        s.post(
            &format!("{V3}/projects"),
            &member,
            json!({"project": {"name": "y", "is_domain": true}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        s.get(&format!("{V3}/projects/{did}"), &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Update through the project API acts on the domain.
        let r = s
            .patch(
                &format!("{V3}/projects/{did}"),
                &admin,
                json!({"project": {"description": "new", "tags": ["t"]}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["project"]["description"], "new");
        assert_eq!(r.json["project"]["is_domain"], true);
        let r = s.get(&format!("{V3}/domains/{did}"), &admin).await;
        assert_eq!(r.json["domain"]["description"], "new");
        assert_eq!(r.json["domain"]["tags"], json!(["t"]));
        s.patch(
            &format!("{V3}/projects/{did}"),
            &admin,
            json!({"project": {"is_domain": false}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.patch(
            &format!("{V3}/projects/{did}"),
            &admin,
            json!({"project": {"parent_id": "default"}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);

        // Delete: refused while enabled, then deletes the domain and what it holds.
        s.delete(&format!("{V3}/projects/{did}"), &admin)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s
            .patch(
                &format!("{V3}/projects/{did}"),
                &admin,
                json!({"project": {"enabled": false}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["project"]["enabled"], false);
        let r = s.delete(&format!("{V3}/projects/{did}"), &admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.get(&format!("{V3}/domains/{did}"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get(&format!("{V3}/projects/{inner}"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&format!("{V3}/projects/{did}"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // A domain-project can hold OS-EP-FILTER associations; deleting it drops them.
        let did2 = create_domain(&s, &admin, "dom-eps").await;
        let eid = {
            let svc = create_service(&s, &admin, "dns").await;
            create_endpoint(&s, &admin, &svc, "public").await
        };
        let pe = format!("{V3}/OS-EP-FILTER/projects/{did2}/endpoints/{eid}");
        assert_eq!(s.put(&pe, &admin).await.status, StatusCode::NO_CONTENT);
        let r = s
            .get(
                &format!("{V3}/OS-EP-FILTER/endpoints/{eid}/projects"),
                &admin,
            )
            .await;
        assert_eq!(r.json["projects"][0]["is_domain"], true, "{}", r.raw);
        delete_domain(&s, &admin, &did2).await;
        let r = s
            .get(
                &format!("{V3}/OS-EP-FILTER/endpoints/{eid}/projects"),
                &admin,
            )
            .await;
        assert_eq!(ids(&r.json, "projects"), Vec::<String>::new());
    }
}
