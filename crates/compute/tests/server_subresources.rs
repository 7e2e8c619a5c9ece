//! Server sub-resources and their neighbours, on every backend: metadata, tags, addresses,
//! instance actions, server groups (with quota usage in limits), the security group proxy,
//! and host administration (hypervisor servers, service updates and deletes).

mod common;

use common::Stack;
use http::{Method, StatusCode};
use serde_json::{json, Value};

/// Sets the server's lock flag directly in the store (the lock action is not under test).
async fn set_locked(s: &Stack, id: &str, locked: bool) {
    let id = id.to_string();
    s.db.store
        .write(move |tx| {
            let id = id.clone();
            Box::pin(async move {
                let old = strata_compute::server_db::get_tx(tx, &id).await?.unwrap();
                let mut n = old.clone();
                n.locked = locked;
                strata_compute::server_db::save(tx, &old, &mut n).await
            })
        })
        .await
        .unwrap();
}

async fn set_quota(s: &Stack, project: &str, resource: &str, limit: i64) {
    let r = s
        .call(
            Method::PUT,
            &format!("/os-quota-sets/{project}"),
            &s.admin,
            None,
            Some(json!({"quota_set": { resource: limit }})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
}

async fn put(s: &Stack, path: &str, token: &str, body: Value) -> common::Resp {
    s.call(Method::PUT, path, token, None, Some(body)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_metadata_is_merged_replaced_and_guarded() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = s
            .boot(&cloud, &s.u1, "vm1", json!({"metadata": {"k": "v"}}))
            .await;
        s.wait_status(&id, "ACTIVE").await;
        let base = format!("/servers/{id}/metadata");
        let r = s.get(&base, &s.u1).await;
        assert_eq!(r.json, json!({"metadata": {"k": "v"}}), "{}", s.label());
        // Merge, then replace.
        let r = s.post(&base, &s.u1, json!({"metadata": {"a": "1"}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json, json!({"metadata": {"k": "v", "a": "1"}}));
        let r = put(&s, &base, &s.u1, json!({"metadata": {"x": "y"}})).await;
        assert_eq!(r.json, json!({"metadata": {"x": "y"}}), "{}", r.raw);
        // One item.
        let r = s.get(&format!("{base}/x"), &s.u1).await;
        assert_eq!(r.json, json!({"meta": {"x": "y"}}));
        let m = s
            .get(&format!("{base}/nope"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, "Metadata item was not found");
        let r = put(&s, &format!("{base}/z"), &s.u1, json!({"meta": {"z": "1"}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json, json!({"meta": {"z": "1"}}));
        let m = put(&s, &format!("{base}/z"), &s.u1, json!({"meta": {"w": "1"}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert_eq!(m, "Request body and URI mismatch");
        let m = put(
            &s,
            &format!("{base}/z"),
            &s.u1,
            json!({"meta": {"z": "1", "w": "2"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST)
        .to_string();
        assert!(m.ends_with("has too many properties"), "{m}");
        s.post(&base, &s.u1, json!({"metadata": {"": "x"}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        // Another project sees nothing.
        s.get(&base, &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.post(&base, &s.u2, json!({"metadata": {"a": "1"}}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // The quota counts the result of the change.
        set_quota(&s, &s.p1, "metadata_items", 3).await;
        let m = s
            .post(&base, &s.u1, json!({"metadata": {"b": "1", "c": "2"}}))
            .await
            .assert_error(StatusCode::FORBIDDEN)
            .to_string();
        assert_eq!(m, "Maximum number of metadata items exceeds 3");
        let r = s.post(&base, &s.u1, json!({"metadata": {"b": "1"}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        // Locked: members are refused, admins are not.
        set_locked(&s, &id, true).await;
        let m = s
            .delete(&format!("{base}/b"), &s.u1)
            .await
            .assert_error(StatusCode::CONFLICT)
            .to_string();
        assert_eq!(m, format!("Instance {id} is locked"));
        put(&s, &base, &s.u1, json!({"metadata": {}}))
            .await
            .assert_error(StatusCode::CONFLICT);
        let r = s.delete(&format!("{base}/b"), &s.admin).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        set_locked(&s, &id, false).await;
        let r = s.delete(&format!("{base}/x"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.delete(&format!("{base}/x"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert_eq!(
            s.get(&base, &s.u1).await.json,
            json!({"metadata": {"z": "1"}})
        );
        // The server's view agrees.
        let r = s.get(&format!("/servers/{id}"), &s.u1).await;
        assert_eq!(r.json["server"]["metadata"], json!({"z": "1"}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_tags_from_2_26() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = s.boot(&cloud, &s.u1, "vm1", json!({})).await;
        s.wait_status(&id, "ACTIVE").await;
        let base = format!("/servers/{id}/tags");
        s.get_mv(&base, &s.u1, "2.25")
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s.get_mv(&base, &s.u1, "2.26").await;
        assert_eq!(r.json, json!({"tags": []}), "{}", s.label());
        let r = s
            .put_mv(&base, &s.u1, "2.26", json!({"tags": ["a", "b", "a"]}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json, json!({"tags": ["a", "b"]}));
        let m = s
            .put_mv(&base, &s.u1, "2.26", json!({"tags": ["a,b"]}))
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert!(m.contains("does not match"), "{m}");
        // One tag: 201 with a Location when added, 204 when already there.
        let r = s
            .call(Method::PUT, &format!("{base}/c"), &s.u1, Some("2.26"), None)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(
            r.headers["location"],
            format!("http://test/compute/v2.1/servers/{id}/tags/c").as_str()
        );
        let r = s
            .call(Method::PUT, &format!("{base}/c"), &s.u1, Some("2.26"), None)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = s.get_mv(&format!("{base}/c"), &s.u1, "2.26").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let m = s
            .get_mv(&format!("{base}/zz"), &s.u1, "2.26")
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, format!("Server {id} has no tag 'zz'"));
        let m = s
            .delete_mv(&format!("{base}/zz"), &s.u1, "2.26")
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, format!("Instance {id} has no tag 'zz'"));
        let r = s.delete_mv(&format!("{base}/c"), &s.u1, "2.26").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            s.get_mv(&base, &s.u1, "2.26").await.json,
            json!({"tags": ["a", "b"]})
        );
        // Another project's server is refused by policy, as in Nova.
        s.get_mv(&base, &s.u2, "2.26")
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // At most 50.
        let many: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
        let r = s
            .put_mv(&base, &s.u1, "2.26", json!({ "tags": many }))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let m = s
            .call(Method::PUT, &format!("{base}/x"), &s.u1, Some("2.26"), None)
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert_eq!(m, "The number of tags exceeded the per-server limit 50");
        let r = s.delete_mv(&base, &s.u1, "2.26").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert_eq!(
            s.get_mv(&base, &s.u1, "2.26").await.json,
            json!({"tags": []})
        );
        // The server view shows tags from 2.26.
        let r = s
            .put_mv(&base, &s.u1, "2.26", json!({"tags": ["web"]}))
            .await;
        assert_eq!(r.status, StatusCode::OK);
        let r = s.get_mv(&format!("/servers/{id}"), &s.u1, "2.26").await;
        assert_eq!(r.json["server"]["tags"], json!(["web"]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_security_groups_of_a_server_and_usage_in_limits() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = s.boot(&cloud, &s.u1, "vm1", json!({})).await;
        s.wait_status(&id, "ACTIVE").await;
        let r = s.get(&format!("/servers/{id}/ips"), &s.u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let net = r.json["addresses"]["net1"].as_array().unwrap().clone();
        assert_eq!(net.len(), 1, "{}", s.label());
        assert_eq!(net[0]["version"], 4);
        assert!(net[0]["addr"].as_str().unwrap().starts_with("10.1.0."));
        assert_eq!(net[0].as_object().unwrap().len(), 2);
        let r = s.get(&format!("/servers/{id}/ips/net1"), &s.u1).await;
        assert_eq!(r.json, json!({ "net1": net }));
        let m = s
            .get(&format!("/servers/{id}/ips/other"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, "Instance is not a member of specified network");
        s.get(&format!("/servers/{id}/ips"), &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // The server's groups (its port's: the project's default).
        let r = s
            .get(&format!("/servers/{id}/os-security-groups"), &s.u1)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let groups = r.json["security_groups"].as_array().unwrap();
        assert_eq!(groups.len(), 1, "{}", r.raw);
        assert_eq!(groups[0]["name"], "default");
        assert_eq!(groups[0]["tenant_id"], s.p1.as_str());
        // Usage in limits and quota details.
        let r = s.get("/limits", &s.u1).await;
        let a = &r.json["limits"]["absolute"];
        assert_eq!(a["totalInstancesUsed"], 1, "{}", r.raw);
        assert_eq!(a["totalCoresUsed"], 1);
        assert_eq!(a["totalRAMUsed"], 512);
        let r = s
            .get(&format!("/os-quota-sets/{}/detail", s.p1), &s.u1)
            .await;
        assert_eq!(r.json["quota_set"]["instances"]["in_use"], 1, "{}", r.raw);
        let r = s.get("/limits", &s.u2).await;
        assert_eq!(r.json["limits"]["absolute"]["totalInstancesUsed"], 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_actions_and_their_events() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = s.boot(&cloud, &s.u1, "vm1", json!({})).await;
        s.wait_status(&id, "ACTIVE").await;
        let base = format!("/servers/{id}/os-instance-actions");
        let r = s.get(&base, &s.u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let list = r.json["instanceActions"].as_array().unwrap().clone();
        assert_eq!(list.len(), 1, "{}", s.label());
        let a = &list[0];
        assert_eq!(a["action"], "create");
        assert_eq!(a["instance_uuid"], id.as_str());
        assert_eq!(a["project_id"], s.p1.as_str());
        assert_eq!(a["user_id"], s.u1_id.as_str());
        assert!(a.get("updated_at").is_none());
        let rid = a["request_id"].as_str().unwrap().to_string();
        // Events: admins always; members from 2.51 without tracebacks; hostId from 2.62.
        let r = s.get(&format!("{base}/{rid}"), &s.u1).await;
        assert!(
            r.json["instanceAction"].get("events").is_none(),
            "{}",
            r.raw
        );
        let r = s.get_mv(&format!("{base}/{rid}"), &s.u1, "2.51").await;
        let ev = &r.json["instanceAction"]["events"][0];
        assert_eq!(
            ev["event"], "compute__do_build_and_run_instance",
            "{}",
            r.raw
        );
        assert!(ev.get("traceback").is_none());
        assert!(ev.get("hostId").is_none());
        let r = s.get_mv(&format!("{base}/{rid}"), &s.u1, "2.62").await;
        let ev = &r.json["instanceAction"]["events"][0];
        assert_eq!(ev["hostId"].as_str().unwrap().len(), 56, "{}", r.raw);
        assert!(ev.get("host").is_none());
        let r = s.get_mv(&format!("{base}/{rid}"), &s.admin, "2.62").await;
        let ev = &r.json["instanceAction"]["events"][0];
        assert!(ev.get("traceback").is_some(), "{}", r.raw);
        assert_eq!(ev["host"], "fake-1");
        // The scheduler's decision is its own event, finished, after the build started.
        let evs = r.json["instanceAction"]["events"].as_array().unwrap();
        let sched = evs
            .iter()
            .find(|e| e["event"] == "conductor_schedule_and_build_instances")
            .unwrap_or_else(|| panic!("no scheduling event: {}", r.raw));
        assert_eq!(sched["result"], "Success", "{}", r.raw);
        let (st, fin) = (
            sched["start_time"].as_str().unwrap(),
            sched["finish_time"].as_str().unwrap(),
        );
        assert!(st <= fin, "{st} > {fin}");
        assert!(ev["start_time"].as_str().unwrap() <= st, "{}", r.raw);
        let m = s
            .get(&format!("{base}/req-nope"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, "Action req-nope not found");
        s.get(&base, &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // Paging (2.58).
        let r = s.get_mv(&format!("{base}?limit=1"), &s.u1, "2.58").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert!(r.json["instanceActions"][0]["updated_at"].is_string());
        assert_eq!(r.json["links"][0]["rel"], "next");
        let m = s
            .get_mv(&format!("{base}?marker=nope"), &s.u1, "2.58")
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert_eq!(m, "Marker nope could not be found.");
        s.get_mv(&format!("{base}?foo=1"), &s.u1, "2.58")
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        // A deleted server's actions stay readable from 2.21.
        let r = s.delete(&format!("/servers/{id}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        s.wait_gone(&id).await;
        s.get_mv(&base, &s.u1, "2.20")
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s.get_mv(&base, &s.u1, "2.21").await;
        let actions: Vec<&str> = r.json["instanceActions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["action"].as_str().unwrap())
            .collect();
        assert_eq!(actions, vec!["delete", "create"], "{}", r.raw);
        let r = s.get_mv(&format!("{base}?limit=1"), &s.u1, "2.58").await;
        let first = r.json["instanceActions"][0]["request_id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = s
            .get_mv(&format!("{base}?limit=1&marker={first}"), &s.u1, "2.58")
            .await;
        assert_eq!(
            r.json["instanceActions"][0]["action"], "create",
            "{}",
            r.raw
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_groups_per_microversion_with_quota() {
    for s in Stack::all().await {
        let r = s
            .post(
                "/os-server-groups",
                &s.u1,
                json!({"server_group": {"name": "g1", "policies": ["affinity"]}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{} {}", s.label(), r.raw);
        let g = &r.json["server_group"];
        let g1 = g["id"].as_str().unwrap().to_string();
        assert_eq!(g["policies"], json!(["affinity"]));
        assert_eq!(g["members"], json!([]));
        assert_eq!(g["metadata"], json!({}));
        assert!(g.get("project_id").is_none());
        // Soft policies from 2.15; policy and rules from 2.64.
        s.post_mv(
            "/os-server-groups",
            &s.u1,
            "2.14",
            json!({"server_group": {"name": "g", "policies": ["soft-affinity"]}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        let m = s
            .post_mv(
                "/os-server-groups",
                &s.u1,
                "2.64",
                json!({"server_group": {"name": "g", "policy": "affinity",
                    "rules": {"max_server_per_host": 2}}}),
            )
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert_eq!(m, "Only anti-affinity policy supports rules.");
        let r = s
            .post_mv(
                "/os-server-groups",
                &s.u1,
                "2.64",
                json!({"server_group": {"name": "g2", "policy": "anti-affinity",
                    "rules": {"max_server_per_host": 2}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let g = &r.json["server_group"];
        let g2 = g["id"].as_str().unwrap().to_string();
        assert_eq!(g["policy"], "anti-affinity");
        assert_eq!(g["rules"], json!({"max_server_per_host": 2}));
        assert_eq!(g["project_id"], s.p1.as_str());
        assert_eq!(g["user_id"], s.u1_id.as_str());
        assert!(g.get("policies").is_none());
        // Show: owner yes, another project refused by policy.
        let r = s
            .get_mv(&format!("/os-server-groups/{g1}"), &s.u1, "2.13")
            .await;
        assert_eq!(r.json["server_group"]["name"], "g1");
        assert_eq!(r.json["server_group"]["project_id"], s.p1.as_str());
        s.get(&format!("/os-server-groups/{g1}"), &s.u2)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // Lists: own project; every project for admins with all_projects.
        let r = s.get("/os-server-groups", &s.u1).await;
        assert_eq!(r.json["server_groups"].as_array().unwrap().len(), 2);
        assert_eq!(
            s.get("/os-server-groups", &s.u2).await.json["server_groups"],
            json!([])
        );
        let r = s.get("/os-server-groups?all_projects=1", &s.admin).await;
        assert_eq!(r.json["server_groups"].as_array().unwrap().len(), 2);
        let r = s.get("/os-server-groups?limit=1&offset=1", &s.u1).await;
        let page = r.json["server_groups"].as_array().unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0]["id"], g2.as_str());
        // Quota and usage.
        let r = s.get("/limits", &s.u1).await;
        assert_eq!(r.json["limits"]["absolute"]["totalServerGroupsUsed"], 2);
        set_quota(&s, &s.p1, "server_groups", 2).await;
        let m = s
            .post(
                "/os-server-groups",
                &s.u1,
                json!({"server_group": {"name": "g3", "policies": ["affinity"]}}),
            )
            .await
            .assert_error(StatusCode::FORBIDDEN)
            .to_string();
        assert_eq!(m, "Quota exceeded, too many server groups.");
        let r = s
            .get(&format!("/os-quota-sets/{}/detail", s.p1), &s.admin)
            .await;
        assert_eq!(r.json["quota_set"]["server_groups"]["in_use"], 2);
        // Delete.
        s.delete(&format!("/os-server-groups/{g1}"), &s.u2)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.delete(&format!("/os-server-groups/{g1}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let m = s
            .get(&format!("/os-server-groups/{g1}"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, format!("Instance group {g1} could not be found."));
        let r = s
            .post(
                "/os-server-groups",
                &s.u1,
                json!({"server_group": {"name": "g3", "policies": ["affinity"]}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_group_proxy_up_to_2_35() {
    for s in Stack::all().await {
        s.get_mv("/os-security-groups", &s.u1, "2.36")
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s
            .post(
                "/os-security-groups",
                &s.u1,
                json!({"security_group": {"name": "web", "description": "web servers"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{} {}", s.label(), r.raw);
        let g = r.json["security_group"].clone();
        let id = g["id"].as_str().unwrap().to_string();
        assert_eq!(g["name"], "web");
        assert_eq!(g["description"], "web servers");
        assert_eq!(g["tenant_id"], s.p1.as_str());
        assert_eq!(g["rules"], json!([]));
        s.post(
            "/os-security-groups",
            &s.u1,
            json!({"security_group": {"name": "x"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        // Listed with the project's default group, sorted by name.
        let r = s.get("/os-security-groups", &s.u1).await;
        let names: Vec<&str> = r.json["security_groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["default", "web"], "{}", r.raw);
        let default_id = r.json["security_groups"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        // A delete without an id finds nothing (Tempest's "without passing id").
        let r = s.delete("/os-security-groups/", &s.u1).await;
        assert_eq!(r.json["itemNotFound"]["code"], 404, "{}", r.raw);
        // Show and update.
        let r = s.get(&format!("/os-security-groups/{id}"), &s.u1).await;
        assert_eq!(r.json["security_group"]["name"], "web");
        let r = put(
            &s,
            &format!("/os-security-groups/{id}"),
            &s.u1,
            json!({"security_group": {"name": "www", "description": "d"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["security_group"]["name"], "www");
        let m = s
            .get("/os-security-groups/not-a-uuid", &s.u1)
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert_eq!(m, "Security group id should be uuid");
        let missing = "00000000-0000-4000-8000-000000000000";
        s.get(&format!("/os-security-groups/{missing}"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get(&format!("/os-security-groups/{id}"), &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // Rules.
        let rule = json!({"security_group_rule": {"parent_group_id": id,
            "ip_protocol": "tcp", "from_port": 22, "to_port": 22, "cidr": "10.0.0.0/8"}});
        let r = s
            .post("/os-security-group-rules", &s.u1, rule.clone())
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let sr = &r.json["security_group_rule"];
        let rule_id = sr["id"].as_str().unwrap().to_string();
        assert_eq!(sr["parent_group_id"], id.as_str());
        assert_eq!(sr["ip_protocol"], "tcp");
        assert_eq!(sr["from_port"], 22);
        assert_eq!(sr["to_port"], 22);
        assert_eq!(sr["ip_range"], json!({"cidr": "10.0.0.0/8"}));
        assert_eq!(sr["group"], json!({}));
        let m = s
            .post("/os-security-group-rules", &s.u1, rule)
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert_eq!(m, format!("This rule already exists in group {id}"));
        let r = s
            .post(
                "/os-security-group-rules",
                &s.u1,
                json!({"security_group_rule": {"parent_group_id": id, "group_id": default_id,
                    "ip_protocol": "icmp"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let sr = &r.json["security_group_rule"];
        assert_eq!(sr["from_port"], -1);
        assert_eq!(sr["group"], json!({"name": "default", "tenant_id": s.p1}));
        s.post(
            "/os-security-group-rules",
            &s.u1,
            json!({"security_group_rule": {"parent_group_id": id, "ip_protocol": "tcp",
                "from_port": 30, "to_port": 20}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.post(
            "/os-security-group-rules",
            &s.u1,
            json!({"security_group_rule": {"parent_group_id": missing, "ip_protocol": "tcp",
                "from_port": 1, "to_port": 2}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        let r = s.get(&format!("/os-security-groups/{id}"), &s.u1).await;
        assert_eq!(
            r.json["security_group"]["rules"].as_array().unwrap().len(),
            2
        );
        let r = s
            .delete(&format!("/os-security-group-rules/{rule_id}"), &s.u1)
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.delete(&format!("/os-security-group-rules/{rule_id}"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // The default group cannot be removed by its project; others can.
        s.delete(&format!("/os-security-groups/{default_id}"), &s.u1)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        let r = s.delete(&format!("/os-security-groups/{id}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.get(&format!("/os-security-groups/{id}"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hypervisor_servers_and_service_administration() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = s.boot(&cloud, &s.u1, "vm1", json!({})).await;
        s.wait_status(&id, "ACTIVE").await;
        let r = s.get("/os-hypervisors", &s.admin).await;
        let hv = r.json["hypervisors"][0].clone();
        let hv_name = hv["hypervisor_hostname"].as_str().unwrap().to_string();
        let hv_id = hv["id"].as_str().unwrap().to_string();
        // Servers of a hypervisor: a route below 2.53, a query parameter from 2.53.
        let r = s
            .get_mv(
                &format!("/os-hypervisors/{hv_name}/servers"),
                &s.admin,
                "2.52",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{} {}", s.label(), r.raw);
        assert_eq!(
            r.json["hypervisors"][0]["servers"],
            json!([{"uuid": id, "name": "vm1"}])
        );
        s.get_mv(
            &format!("/os-hypervisors/{hv_name}/servers"),
            &s.admin,
            "2.53",
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        s.get_mv("/os-hypervisors/nomatch/servers", &s.admin, "2.52")
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get_mv(&format!("/os-hypervisors/{hv_name}/servers"), &s.u1, "2.52")
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s
            .get_mv("/os-hypervisors?with_servers=true", &s.admin, "2.53")
            .await;
        assert_eq!(r.json["hypervisors"][0]["servers"][0]["uuid"], id.as_str());
        let r = s
            .get_mv(
                &format!("/os-hypervisors/{hv_id}?with_servers=1"),
                &s.admin,
                "2.53",
            )
            .await;
        assert_eq!(
            r.json["hypervisor"]["servers"][0]["name"], "vm1",
            "{}",
            r.raw
        );
        let r = s.get_mv("/os-hypervisors/detail", &s.admin, "2.53").await;
        assert!(r.json["hypervisors"][0].get("servers").is_none());
        // Search by name below 2.53; uptime below 2.88, in the view from 2.88.
        let pattern = &hv_name[..hv_name.len() - 1];
        let r = s
            .get_mv(
                &format!("/os-hypervisors/{pattern}/search"),
                &s.admin,
                "2.52",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            r.json["hypervisors"][0]["hypervisor_hostname"],
            hv_name.as_str()
        );
        assert!(r.json["hypervisors"][0].get("servers").is_none());
        s.get_mv("/os-hypervisors/nomatch/search", &s.admin, "2.52")
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get_mv(
            &format!("/os-hypervisors/{pattern}/search"),
            &s.admin,
            "2.53",
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        let r = s
            .get_mv(&format!("/os-hypervisors/{hv_id}/uptime"), &s.admin, "2.53")
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let up = r.json["hypervisor"]["uptime"].as_str().unwrap().to_string();
        assert!(up.contains(" up 0 days, "), "{up}");
        assert_eq!(r.json["hypervisor"]["id"], hv_id.as_str());
        s.get_mv(&format!("/os-hypervisors/{hv_id}/uptime"), &s.u1, "2.53")
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.get_mv("/os-hypervisors/nope/uptime", &s.admin, "2.53")
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get_mv(&format!("/os-hypervisors/{hv_id}/uptime"), &s.admin, "2.88")
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s
            .get_mv(&format!("/os-hypervisors/{hv_id}"), &s.admin, "2.88")
            .await;
        assert!(r.json["hypervisor"]["uptime"].is_string(), "{}", r.raw);
        // Services: the legacy actions below 2.53.
        // Integer ids below 2.53 (Tempest's 2.1 schema), UUIDs from 2.53.
        let r = s.get("/os-services", &s.admin).await;
        assert!(r.json["services"][0]["id"].is_i64(), "{}", r.raw);
        let r = s.get_mv("/os-services", &s.admin, "2.53").await;
        let svc_id = r.json["services"][0]["id"].as_str().unwrap().to_string();
        let r = s
            .call(
                Method::PUT,
                "/os-services/disable-log-reason",
                &s.admin,
                Some("2.1"),
                Some(json!({"host": "fake-1", "binary": "nova-compute",
                    "disabled_reason": "maintenance"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            r.json,
            json!({"service": {"host": "fake-1", "binary": "nova-compute",
                "status": "disabled", "disabled_reason": "maintenance"}})
        );
        let r = s.get("/os-services", &s.admin).await;
        assert_eq!(r.json["services"][0]["status"], "disabled");
        assert_eq!(r.json["services"][0]["disabled_reason"], "maintenance");
        let r = s
            .call(
                Method::PUT,
                "/os-services/enable",
                &s.admin,
                Some("2.1"),
                Some(json!({"host": "fake-1", "binary": "nova-compute"})),
            )
            .await;
        assert_eq!(r.json["service"]["status"], "enabled", "{}", r.raw);
        s.call(
            Method::PUT,
            "/os-services/enable",
            &s.admin,
            Some("2.1"),
            Some(json!({"host": "nohost", "binary": "nova-compute"})),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        let m = s
            .call(
                Method::PUT,
                "/os-services/force-down",
                &s.admin,
                Some("2.10"),
                Some(json!({"host": "fake-1", "binary": "nova-compute"})),
            )
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, "Unknown action");
        let m = s
            .call(
                Method::PUT,
                "/os-services/force-down",
                &s.admin,
                Some("2.11"),
                Some(json!({"host": "fake-1", "binary": "nova-compute"})),
            )
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert_eq!(m, "Missing forced_down field");
        s.call(
            Method::PUT,
            "/os-services/disable",
            &s.u1,
            Some("2.1"),
            Some(json!({"host": "fake-1", "binary": "nova-compute"})),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        // 2.53: by id.
        let m = s
            .put_mv(
                "/os-services/disable",
                &s.admin,
                "2.53",
                json!({"status": "disabled"}),
            )
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert_eq!(m, "Invalid uuid disable");
        let m = s
            .put_mv(
                &format!("/os-services/{svc_id}"),
                &s.admin,
                "2.53",
                json!({"disabled_reason": "x"}),
            )
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert!(m.starts_with("No updates were requested."), "{m}");
        let r = s
            .put_mv(
                &format!("/os-services/{svc_id}"),
                &s.admin,
                "2.53",
                json!({"status": "disabled", "disabled_reason": "drain"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["service"]["status"], "disabled");
        assert_eq!(r.json["service"]["disabled_reason"], "drain");
        assert_eq!(r.json["service"]["forced_down"], false);
        assert_eq!(r.json["service"]["id"], svc_id.as_str());
        // A disabled host is not scheduled to.
        let other = s.boot(&cloud, &s.u1, "vm2", json!({})).await;
        let r = s.wait_status(&other, "ERROR").await;
        assert!(
            r.json["server"]["fault"]["message"]
                .as_str()
                .unwrap()
                .contains("No valid host"),
            "{}",
            r.raw
        );
        // A service with servers cannot be deleted.
        let m = s
            .delete_mv(&format!("/os-services/{svc_id}"), &s.admin, "2.53")
            .await
            .assert_error(StatusCode::CONFLICT)
            .to_string();
        assert!(m.starts_with("Unable to delete compute service"), "{m}");
        for sv in [&id, &other] {
            let r = s.delete(&format!("/servers/{sv}"), &s.u1).await;
            assert_eq!(r.status, StatusCode::NO_CONTENT);
            s.wait_gone(sv).await;
        }
        drop(cloud);
        let r = s
            .delete_mv(&format!("/os-services/{svc_id}"), &s.admin, "2.53")
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let m = s
            .delete_mv(&format!("/os-services/{svc_id}"), &s.admin, "2.53")
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, format!("Service {svc_id} not found."));
    }
}
