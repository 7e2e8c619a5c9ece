//! The catalog (regions, services, endpoints) and application credentials, end to end through
//! the router: CRUD, Keystone's refusals, the catalog tokens carry, and authenticating with an
//! application credential. Runs on SQLite and PostgreSQL.

mod common;

use common::{test_config, Stack};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use strata_identity::db::assignments::{self, Assignment, Kind};

const V3: &str = "/identity/v3";

/// The endpoints of the catalog entry of `kind` in a token body, or `None` when absent.
fn catalog_entry<'a>(token_body: &'a Value, kind: &str) -> Option<&'a Vec<Value>> {
    token_body["token"]["catalog"]
        .as_array()?
        .iter()
        .find(|s| s["type"] == kind)
        .map(|s| s["endpoints"].as_array().unwrap())
}

#[tokio::test]
async fn regions_crud_hierarchy_and_refusals() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let l = s.label();

        // POST with an id; the view; a duplicate id.
        let r = s
            .post(
                &format!("{V3}/regions"),
                &admin,
                json!({"region": {"id": "RegionTwo", "description": "two", "tier": "gold"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
        assert_eq!(r.json["region"]["id"], "RegionTwo");
        assert_eq!(r.json["region"]["description"], "two");
        assert_eq!(r.json["region"]["parent_region_id"], Value::Null);
        assert_eq!(
            r.json["region"]["tier"], "gold",
            "extra attributes are kept"
        );
        assert!(r.json["region"]["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with("/v3/regions/RegionTwo"));
        let r = s
            .post(
                &format!("{V3}/regions"),
                &admin,
                json!({"region": {"id": "RegionTwo"}}),
            )
            .await;
        assert!(r
            .assert_error(StatusCode::CONFLICT)
            .contains("Duplicate ID, RegionTwo"));

        // POST without an id generates one; description defaults to "".
        let r = s
            .post(&format!("{V3}/regions"), &admin, json!({"region": {}}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(r.json["region"]["id"].as_str().unwrap().len(), 32);
        assert_eq!(r.json["region"]["description"], "");

        // PUT creates with the path id; a conflicting body id; an unknown parent.
        let r = s
            .call(
                Method::PUT,
                &format!("{V3}/regions/RegionThree"),
                Some(&admin),
                &[],
                Some(json!({"region": {"parent_region_id": "RegionTwo"}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(r.json["region"]["parent_region_id"], "RegionTwo");
        let r = s
            .call(
                Method::PUT,
                &format!("{V3}/regions/RegionFour"),
                Some(&admin),
                &[],
                Some(json!({"region": {"id": "Other"}})),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .post(
                &format!("{V3}/regions"),
                &admin,
                json!({"region": {"id": "Orphan", "parent_region_id": "nope"}}),
            )
            .await;
        assert!(r
            .assert_error(StatusCode::NOT_FOUND)
            .contains("Could not find region: nope"));

        // List with the parent filter; show; 404.
        let r = s
            .get(&format!("{V3}/regions?parent_region_id=RegionTwo"), &admin)
            .await;
        let ids: Vec<&str> = r.json["regions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, vec!["RegionThree"], "{l}");
        assert!(r.json["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with("regions?parent_region_id=RegionTwo"));
        s.get(&format!("{V3}/regions/nope"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // Update: description; a cycle is refused; parent cleared with null; id can't change.
        let r = s
            .patch(
                &format!("{V3}/regions/RegionTwo"),
                &admin,
                json!({"region": {"description": "deux"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["region"]["description"], "deux");
        assert_eq!(r.json["region"]["tier"], "gold");
        let r = s
            .patch(
                &format!("{V3}/regions/RegionTwo"),
                &admin,
                json!({"region": {"parent_region_id": "RegionThree"}}),
            )
            .await;
        assert!(r.assert_error(StatusCode::BAD_REQUEST).contains("circular"));
        let r = s
            .patch(
                &format!("{V3}/regions/RegionTwo"),
                &admin,
                json!({"region": {"parent_region_id": "RegionTwo"}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .patch(
                &format!("{V3}/regions/RegionTwo"),
                &admin,
                json!({"region": {"id": "X"}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .patch(
                &format!("{V3}/regions/RegionTwo"),
                &admin,
                json!({"region": {}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        s.patch(
            &format!("{V3}/regions/nope"),
            &admin,
            json!({"region": {"description": "x"}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);

        // Any authenticated caller reads regions; only admins write them; no token is 401.
        let demo_id = s.create_user(&admin, "reg-reader", "pw-reg-reader").await;
        let demo_project = s.create_project(&admin, "reg-project").await;
        s.grant(&demo_id, &demo_project, "member").await;
        let member = s.login("reg-reader", "pw-reg-reader", "reg-project").await;
        assert_eq!(
            s.get(&format!("{V3}/regions"), &member).await.status,
            StatusCode::OK
        );
        assert_eq!(
            s.get(&format!("{V3}/regions/RegionTwo"), &member)
                .await
                .status,
            StatusCode::OK
        );
        s.post(&format!("{V3}/regions"), &member, json!({"region": {}}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.delete(&format!("{V3}/regions/RegionThree"), &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s
            .call(Method::GET, &format!("{V3}/regions"), None, &[], None)
            .await;
        r.assert_error(StatusCode::UNAUTHORIZED);

        // Deleting a region deletes its descendants, as Keystone does.
        let r = s
            .call(
                Method::PUT,
                &format!("{V3}/regions/Leaf"),
                Some(&admin),
                &[],
                Some(json!({"region": {"parent_region_id": "RegionThree"}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(
            s.delete(&format!("{V3}/regions/RegionTwo"), &admin)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        for gone in ["RegionTwo", "RegionThree", "Leaf"] {
            s.get(&format!("{V3}/regions/{gone}"), &admin)
                .await
                .assert_error(StatusCode::NOT_FOUND);
        }
        s.delete(&format!("{V3}/regions/RegionTwo"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn services_and_endpoints_crud_and_the_token_catalog() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let l = s.label();

        // Services: create (type required, extras kept), list filters, show, update.
        let r = s
            .post(&format!("{V3}/services"), &admin,
                json!({"service": {"type": "compute", "name": "nova", "description": "Compute", "owner": "ops"}}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
        let svc = r.json["service"].clone();
        let sid = svc["id"].as_str().unwrap().to_string();
        assert_eq!(svc["type"], "compute");
        assert_eq!(svc["name"], "nova");
        assert_eq!(svc["description"], "Compute");
        assert_eq!(svc["enabled"], true);
        assert_eq!(svc["owner"], "ops");
        assert!(svc["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/services/{sid}")));
        let r = s
            .post(
                &format!("{V3}/services"),
                &admin,
                json!({"service": {"name": "typeless"}}),
            )
            .await;
        assert!(r
            .assert_error(StatusCode::BAD_REQUEST)
            .contains("'type' is a required property"));
        let r = s
            .post(
                &format!("{V3}/services"),
                &admin,
                json!({"service": {"type": "x", "enabled": "True"}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .post(
                &format!("{V3}/services"),
                &admin,
                json!({"service": {"type": "volumev3"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.json["service"]["name"], "", "Keystone's default name");
        assert!(r.json["service"].get("description").is_none());

        let r = s.get(&format!("{V3}/services?type=compute"), &admin).await;
        assert_eq!(r.json["services"].as_array().unwrap().len(), 1, "{}", r.raw);
        let r = s.get(&format!("{V3}/services?name=nova"), &admin).await;
        assert_eq!(r.json["services"][0]["id"], sid.as_str());
        let r = s.get(&format!("{V3}/services"), &admin).await;
        assert_eq!(
            r.json["services"].as_array().unwrap().len(),
            3,
            "identity, compute, volumev3"
        );
        let r = s
            .patch(
                &format!("{V3}/services/{sid}"),
                &admin,
                json!({"service": {"description": "Nova"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["service"]["description"], "Nova");
        assert_eq!(r.json["service"]["owner"], "ops");
        s.patch(
            &format!("{V3}/services/{sid}"),
            &admin,
            json!({"service": {"enabled": "False"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.get(&format!("{V3}/services/nope"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // Endpoints: Keystone's refusals.
        let ep = |body: Value| json!({"endpoint": body});
        let url = "http://nova.test:8774/v2.1";
        let cases = [
            (
                json!({"service_id": sid, "interface": "bogus", "url": url}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"service_id": sid, "interface": "public", "url": "not a url"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"service_id": sid, "interface": "public", "url": "http://h/$(secret)s"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"service_id": sid, "interface": "public"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"service_id": "nope", "interface": "public", "url": url}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"service_id": sid, "interface": "public", "url": url, "region_id": "nope"}),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!({"service_id": sid, "interface": "public", "url": url, "enabled": "False"}),
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (body, want) in cases {
            let r = s
                .post(&format!("{V3}/endpoints"), &admin, ep(body.clone()))
                .await;
            r.assert_error(want);
            assert!(!r.raw.contains("Internal"), "{body}: {}", r.raw);
        }
        // The service_id and region_id refusals are Keystone's ValidationError.
        let r = s
            .post(&format!("{V3}/endpoints"), &admin, ep(json!({"service_id": sid, "interface": "public", "url": url, "region_id": "nope"})))
            .await;
        assert!(r
            .assert_error(StatusCode::BAD_REQUEST)
            .starts_with("Expecting to find endpoint region_id in region table"));

        // Create with region_id; with the legacy `region`, which is created when missing.
        let r = s
            .post(&format!("{V3}/endpoints"), &admin,
                ep(json!({"service_id": sid, "interface": "public", "url": url, "region_id": "RegionOne"})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let e = r.json["endpoint"].clone();
        let eid = e["id"].as_str().unwrap().to_string();
        assert_eq!(e["region"], "RegionOne");
        assert_eq!(e["region_id"], "RegionOne");
        assert_eq!(e["interface"], "public");
        assert_eq!(e["service_id"], sid.as_str());
        assert_eq!(e["url"], url);
        assert_eq!(e["enabled"], true);
        assert!(e["links"]["self"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v3/endpoints/{eid}")));
        let r = s
            .post(&format!("{V3}/endpoints"), &admin,
                ep(json!({"service_id": sid, "interface": "internal", "url": "http://10.0.0.1:8774/v2.1/$(project_id)s", "region": "Legacy"})))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(r.json["endpoint"]["region_id"], "Legacy");
        let legacy_eid = r.json["endpoint"]["id"].as_str().unwrap().to_string();
        assert_eq!(
            s.get(&format!("{V3}/regions/Legacy"), &admin).await.status,
            StatusCode::OK
        );

        // A region with endpoints can't be deleted (403, as Keystone).
        let r = s.delete(&format!("{V3}/regions/Legacy"), &admin).await;
        assert!(r
            .assert_error(StatusCode::FORBIDDEN)
            .contains("associated endpoints"));

        // List filters.
        let r = s
            .get(&format!("{V3}/endpoints?service_id={sid}"), &admin)
            .await;
        assert_eq!(
            r.json["endpoints"].as_array().unwrap().len(),
            2,
            "{}",
            r.raw
        );
        let r = s
            .get(
                &format!("{V3}/endpoints?service_id={sid}&interface=public"),
                &admin,
            )
            .await;
        assert_eq!(r.json["endpoints"].as_array().unwrap().len(), 1);
        let r = s
            .get(&format!("{V3}/endpoints?region_id=Legacy"), &admin)
            .await;
        assert_eq!(r.json["endpoints"][0]["id"], legacy_eid.as_str());
        s.get(&format!("{V3}/endpoints?interface=bogus"), &admin)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        assert_eq!(
            s.get(&format!("{V3}/endpoints/{eid}"), &admin).await.json["endpoint"]["url"],
            url
        );

        // The next token carries the new service and endpoints.
        let r = s
            .password_token(
                "admin",
                "default",
                common::ADMIN_PW,
                Some(common::project_scope("admin")),
            )
            .await;
        let eps = catalog_entry(&r.json, "compute").expect("compute in the catalog");
        assert_eq!(eps.len(), 2, "{l}");
        let public = eps.iter().find(|e| e["interface"] == "public").unwrap();
        assert_eq!(public["url"], url);
        assert_eq!(public["region_id"], "RegionOne");
        assert_eq!(public["region"], "RegionOne");
        assert_eq!(public["id"], eid.as_str());

        // Update an endpoint: move it, disable it; disabled endpoints leave the catalog.
        let r = s
            .patch(&format!("{V3}/endpoints/{eid}"), &admin,
                ep(json!({"url": "https://nova.test/v2.1", "region": "Elsewhere", "enabled": false})))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["endpoint"]["region"], "Elsewhere");
        assert_eq!(r.json["endpoint"]["enabled"], false);
        assert_eq!(r.json["endpoint"]["url"], "https://nova.test/v2.1");
        s.patch(
            &format!("{V3}/endpoints/{eid}"),
            &admin,
            ep(json!({"service_id": "nope"})),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.patch(
            &format!("{V3}/endpoints/{eid}"),
            &admin,
            ep(json!({"interface": "outer"})),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.patch(
            &format!("{V3}/endpoints/{eid}"),
            &admin,
            ep(json!({"enabled": "True"})),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .patch(
                &format!("{V3}/endpoints/{eid}"),
                &admin,
                ep(json!({"region_id": null})),
            )
            .await;
        assert_eq!(r.json["endpoint"]["region_id"], Value::Null, "{}", r.raw);
        let r = s.get(&format!("{V3}/auth/catalog"), &admin).await;
        let eps = r.json["catalog"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "compute")
            .unwrap()["endpoints"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(
            eps.len(),
            1,
            "the disabled endpoint left the catalog: {eps:?}"
        );

        // Policy: services and endpoints are for admins (and system readers).
        let uid = s.create_user(&admin, "cat-member", "pw-cat-member").await;
        let pid = s.create_project(&admin, "cat-project").await;
        s.grant(&uid, &pid, "member").await;
        let member = s.login("cat-member", "pw-cat-member", "cat-project").await;
        for path in [
            format!("{V3}/services"),
            format!("{V3}/services/{sid}"),
            format!("{V3}/endpoints"),
            format!("{V3}/endpoints/{eid}"),
        ] {
            s.get(&path, &member)
                .await
                .assert_error(StatusCode::FORBIDDEN);
        }
        s.post(
            &format!("{V3}/services"),
            &member,
            json!({"service": {"type": "x"}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        s.delete(&format!("{V3}/endpoints/{eid}"), &member)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Deletes: an endpoint; a service with its endpoints; both leave the catalog.
        assert_eq!(
            s.delete(&format!("{V3}/endpoints/{eid}"), &admin)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        s.delete(&format!("{V3}/endpoints/{eid}"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert_eq!(
            s.delete(&format!("{V3}/services/{sid}"), &admin)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
        s.get(&format!("{V3}/endpoints/{legacy_eid}"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get(&format!("{V3}/services/{sid}"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&format!("{V3}/services/{sid}"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s
            .password_token(
                "admin",
                "default",
                common::ADMIN_PW,
                Some(common::project_scope("admin")),
            )
            .await;
        assert!(catalog_entry(&r.json, "compute").is_none(), "{l}");
        assert!(catalog_entry(&r.json, "identity").is_some());
        // With its endpoint gone, the legacy region can go too.
        assert_eq!(
            s.delete(&format!("{V3}/regions/Legacy"), &admin)
                .await
                .status,
            StatusCode::NO_CONTENT
        );
    }
}

/// A user `alice` who is a member of project `ac-project`, and her token there.
struct Alice {
    id: String,
    project: String,
    token: String,
}

const ALICE_PW: &str = "alice-pw-1";

async fn alice(s: &Stack, admin: &str) -> Alice {
    let id = s.create_user(admin, "alice", ALICE_PW).await;
    let project = s.create_project(admin, "ac-project").await;
    s.grant(&id, &project, "member").await;
    let token = s.login("alice", ALICE_PW, "ac-project").await;
    Alice { id, project, token }
}

fn app_cred_auth(method: Value) -> Value {
    json!({"auth": {"identity": {"methods": ["application_credential"], "application_credential": method}}})
}

async fn app_cred_token(s: &Stack, method: Value) -> common::Resp {
    s.call(
        Method::POST,
        &format!("{V3}/auth/tokens"),
        None,
        &[],
        Some(app_cred_auth(method)),
    )
    .await
}

fn role_names(token_body: &Value) -> Vec<String> {
    let mut v: Vec<String> = token_body["token"]["roles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn app_cred_create_show_list_and_refusals() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let a = alice(&s, &admin).await;
        let l = s.label();
        let base = format!("{V3}/users/{}/application_credentials", a.id);

        let r = s
            .post(
                &base,
                &a.token,
                json!({"application_credential": {"name": "ac1", "description": "CI"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
        let c = r.json["application_credential"].clone();
        let cid = c["id"].as_str().unwrap().to_string();
        let secret = c["secret"].as_str().unwrap();
        assert_eq!(secret.len(), 86, "64 random bytes, URL-safe base64");
        assert!(secret
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_'));
        assert_eq!(c["name"], "ac1");
        assert_eq!(c["description"], "CI");
        assert_eq!(c["user_id"], a.id.as_str());
        assert_eq!(c["project_id"], a.project.as_str());
        assert_eq!(c["expires_at"], Value::Null);
        assert_eq!(c["unrestricted"], false);
        assert_eq!(c["access_rules"], json!([]));
        let mut names: Vec<&str> = c["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec!["member", "reader"],
            "the token's roles, implied included"
        );
        assert!(c["roles"][0].as_object().unwrap().contains_key("domain_id"));
        assert_eq!(
            c["links"]["self"].as_str().unwrap(),
            format!(
                "http://test/identity/v3/users/{}/application_credentials/{cid}",
                a.id
            )
        );

        // The secret is never shown again.
        let r = s.get(&format!("{base}/{cid}"), &a.token).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert!(r.json["application_credential"].get("secret").is_none());
        assert!(!r.raw.contains(secret));
        assert_eq!(r.json["application_credential"]["name"], "ac1");
        let r = s.get(&base, &a.token).await;
        assert_eq!(
            r.json["application_credentials"].as_array().unwrap().len(),
            1
        );
        assert!(!r.raw.contains(secret) && !r.raw.contains("secret"));

        // A given secret, an expiry echoed to the microsecond, a role subset.
        let reader = s.role_id("reader").await;
        let r = s
            .post(&base, &a.token, json!({"application_credential": {
                "name": "ac2", "secret": "my-own-secret", "expires_at": "2099-01-02T03:04:05.123456",
                "roles": [{"id": reader}], "unrestricted": true,
                "access_rules": [{"path": "/v2.1/servers", "method": "GET", "service": "compute"}]}}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let c2 = &r.json["application_credential"];
        assert_eq!(c2["secret"], "my-own-secret");
        assert_eq!(c2["expires_at"], "2099-01-02T03:04:05.123456");
        assert_eq!(c2["roles"].as_array().unwrap().len(), 1);
        assert_eq!(c2["roles"][0]["name"], "reader");
        assert_eq!(c2["unrestricted"], true);
        assert_eq!(c2["access_rules"][0]["method"], "GET");
        assert_eq!(c2["access_rules"][0]["id"].as_str().unwrap().len(), 32);

        // List filter by name.
        let r = s.get(&format!("{base}?name=ac2"), &a.token).await;
        let listed = r.json["application_credentials"].as_array().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["name"], "ac2");
        assert_eq!(
            s.get(&format!("{base}?name=zzz"), &a.token).await.json["application_credentials"],
            json!([])
        );

        // Refusals.
        let create = |body: Value| {
            let base = base.clone();
            let token = a.token.clone();
            let s = &s;
            async move {
                s.post(&base, &token, json!({"application_credential": body}))
                    .await
            }
        };
        create(json!({"name": "ac1"}))
            .await
            .assert_error(StatusCode::CONFLICT);
        create(json!({"description": "nameless"}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        create(json!({"name": "  "}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        create(json!({"name": "x", "bogus": 1}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        let m = create(json!({"name": "x", "expires_at": "2001-01-01T00:00:00"}))
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert!(m.contains("'expires_at' must not be before now"), "{m}");
        create(json!({"name": "x", "expires_at": "tomorrow"}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        let m = create(json!({"name": "x", "roles": [{"name": "admin"}]}))
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert!(m.contains("unassigned role"), "{m}");
        create(json!({"name": "x", "roles": [{"name": "no-such-role"}]}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        create(json!({"name": "x", "unrestricted": "yes"}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        create(json!({"name": "x", "access_rules": [{"method": "FETCH"}]}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);

        // Only the user themself creates; an unscoped token has no project to bind.
        let r = s
            .post(
                &base,
                &admin,
                json!({"application_credential": {"name": "by-admin"}}),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let unscoped = s
            .password_token("alice", "default", ALICE_PW, None)
            .await
            .token();
        let r = s
            .post(
                &base,
                &unscoped,
                json!({"application_credential": {"name": "unscoped"}}),
            )
            .await;
        assert!(r
            .assert_error(StatusCode::BAD_REQUEST)
            .contains("project-scoped"));

        // Reading: the owner and admins; not another user. Unknown ids are 404.
        let bob = s.create_user(&admin, "bob", "bob-pw-1").await;
        s.grant(&bob, &a.project, "member").await;
        let bob_token = s.login("bob", "bob-pw-1", "ac-project").await;
        s.get(&format!("{base}/{cid}"), &bob_token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get(&base, &bob_token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.delete(&format!("{base}/{cid}"), &bob_token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // Naming alice's credential under bob's own path gains nothing.
        let bob_path = format!("{V3}/users/{bob}/application_credentials/{cid}");
        s.get(&bob_path, &bob_token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.delete(&bob_path, &bob_token)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(
            s.get(&format!("{base}/{cid}"), &admin).await.status,
            StatusCode::OK
        );
        assert_eq!(
            s.get(&base, &admin).await.json["application_credentials"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        let r = s.get(&format!("{base}/nope"), &a.token).await;
        assert!(r
            .assert_error(StatusCode::NOT_FOUND)
            .contains("Could not find Application Credential: nope"));
        s.delete(&format!("{base}/nope"), &a.token)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s.call(Method::GET, &base, None, &[], None).await;
        r.assert_error(StatusCode::UNAUTHORIZED);

        // An admin may delete another user's credential.
        assert_eq!(
            s.delete(&format!("{base}/{cid}"), &admin).await.status,
            StatusCode::NO_CONTENT
        );
        s.get(&format!("{base}/{cid}"), &a.token)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn app_cred_authentication_and_revocation() {
    for s in Stack::all(test_config()).await {
        let admin = s.admin().await;
        let a = alice(&s, &admin).await;
        let l = s.label();
        let base = format!("{V3}/users/{}/application_credentials", a.id);
        let r = s
            .post(
                &base,
                &a.token,
                json!({"application_credential": {"name": "ci"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let cid = r.json["application_credential"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let secret = r.json["application_credential"]["secret"]
            .as_str()
            .unwrap()
            .to_string();

        // By id.
        let r = app_cred_token(&s, json!({"id": cid, "secret": secret})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{l}: {}", r.raw);
        let t = &r.json["token"];
        assert_eq!(t["methods"], json!(["application_credential"]));
        assert_eq!(
            t["application_credential"],
            json!({"id": cid, "name": "ci", "restricted": true})
        );
        assert_eq!(t["project"]["id"], a.project.as_str());
        assert_eq!(t["user"]["id"], a.id.as_str());
        assert_eq!(role_names(&r.json), vec!["member", "reader"]);
        assert!(catalog_entry(&r.json, "identity").is_some());
        let by_id = r.token();

        // By name with the user by id, and by name with the user by name and domain.
        let r = app_cred_token(
            &s,
            json!({"name": "ci", "user": {"id": a.id}, "secret": secret}),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let r = app_cred_token(&s, json!({"name": "ci", "user": {"name": "alice", "domain": {"id": "default"}}, "secret": secret})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let by_name = r.token();

        // Wrong secret, unknown id or name, a requested scope: all 401.
        app_cred_token(&s, json!({"id": cid, "secret": "wrong"}))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        app_cred_token(&s, json!({"id": "nope", "secret": secret}))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        app_cred_token(
            &s,
            json!({"name": "nope", "user": {"id": a.id}, "secret": secret}),
        )
        .await
        .assert_error(StatusCode::UNAUTHORIZED);
        let mut scoped = app_cred_auth(json!({"id": cid, "secret": secret}));
        scoped["auth"]["scope"] = common::project_scope("admin");
        let r = s
            .call(
                Method::POST,
                &format!("{V3}/auth/tokens"),
                None,
                &[],
                Some(scoped),
            )
            .await;
        r.assert_error(StatusCode::UNAUTHORIZED);

        // A restricted credential's token can't manage credentials; an unrestricted one's can.
        let r = s
            .post(
                &base,
                &by_id,
                json!({"application_credential": {"name": "nested"}}),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        s.delete(&format!("{base}/{cid}"), &by_id)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s
            .post(
                &base,
                &a.token,
                json!({"application_credential": {"name": "free", "unrestricted": true}}),
            )
            .await;
        let free = r.json["application_credential"].clone();
        let free_token = app_cred_token(&s, json!({"id": free["id"], "secret": free["secret"]}))
            .await
            .token();
        let r = s
            .post(
                &base,
                &free_token,
                json!({"application_credential": {"name": "nested"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(
            r.json["application_credential"]["project_id"],
            a.project.as_str()
        );

        // The token carries only the delegated roles.
        let reader = s.role_id("reader").await;
        let r = s
            .post(
                &base,
                &a.token,
                json!({"application_credential": {"name": "ro", "roles": [{"id": reader}]}}),
            )
            .await;
        let ro = r.json["application_credential"].clone();
        let r = app_cred_token(&s, json!({"id": ro["id"], "secret": ro["secret"]})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(role_names(&r.json), vec!["reader"], "{l}");
        let ro_token = r.token();
        let r = s.validate(&admin, &ro_token).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(role_names(&r.json), vec!["reader"]);
        assert_eq!(r.json["token"]["application_credential"]["id"], ro["id"]);

        // An expired credential no longer authenticates, and its tokens no longer validate.
        strata_store::sqlx::query("UPDATE identity_app_cred SET expires_at = $1 WHERE id = $2")
            .bind(strata_core::time::now_micros() - 1_000_000)
            .bind(ro["id"].as_str().unwrap())
            .execute(s.db.store.pool())
            .await
            .unwrap();
        s.identity.changed().await.unwrap();
        app_cred_token(&s, json!({"id": ro["id"], "secret": ro["secret"]}))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        s.validate(&admin, &ro_token)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // Deleting the credential revokes the tokens made from it.
        assert_eq!(s.validate(&admin, &by_id).await.status, StatusCode::OK);
        assert_eq!(
            s.delete(&format!("{base}/{cid}"), &a.token).await.status,
            StatusCode::NO_CONTENT
        );
        s.validate(&admin, &by_id)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.validate(&admin, &by_name)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        app_cred_token(&s, json!({"id": cid, "secret": secret}))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
        // Alice's own token is untouched.
        assert_eq!(s.validate(&admin, &a.token).await.status, StatusCode::OK);

        // Losing the role on the project invalidates the credential's tokens and refuses new ones.
        let r = s
            .post(
                &base,
                &a.token,
                json!({"application_credential": {"name": "member-cred"}}),
            )
            .await;
        let mc = r.json["application_credential"].clone();
        let mc_token = app_cred_token(&s, json!({"id": mc["id"], "secret": mc["secret"]}))
            .await
            .token();
        assert_eq!(s.validate(&admin, &mc_token).await.status, StatusCode::OK);
        let removed = assignments::remove(
            &s.db.store,
            &Assignment {
                kind: Kind::UserProject,
                actor_id: a.id.clone(),
                target_id: a.project.clone(),
                role_id: s.role_id("member").await,
                inherited: false,
            },
            vec![],
        )
        .await
        .unwrap();
        assert!(removed);
        s.identity.changed().await.unwrap();
        s.validate(&admin, &mc_token)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        app_cred_token(&s, json!({"id": mc["id"], "secret": mc["secret"]}))
            .await
            .assert_error(StatusCode::UNAUTHORIZED);
    }
}
