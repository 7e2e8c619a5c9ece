//! The bare-metal API end to end in one process: identity + the bare-metal service over a
//! fresh store, its conductor running, BMCs real where it matters (`strata_sim`'s Redfish
//! BMCs, `strata_ipmi`'s server with a `FakeBmc`) and `fake-hardware` elsewhere.

mod common;

use common::{Stack, LATEST};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use std::sync::Arc;
use strata_sim::{Fleet, FleetOptions, LogBoots};
use strata_store::testing::TestDb;

const MAX: &str = "1.115";

// ------------------------------------------------------------------ discovery and versions

#[tokio::test]
async fn version_discovery_without_a_token() {
    let s = Stack::new(TestDb::sqlite().await).await;
    let r = s.call(Method::GET, "/baremetal", None, &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.json["name"], "OpenStack Ironic API");
    assert_eq!(r.json["default_version"]["id"], "v1");
    assert_eq!(r.json["default_version"]["min_version"], "1.1");
    assert_eq!(r.json["default_version"]["version"], MAX);
    assert_eq!(r.json["default_version"]["status"], "CURRENT");
    assert_eq!(r.json["versions"].as_array().unwrap().len(), 1);
    assert_eq!(
        r.header("x-openstack-ironic-api-minimum-version"),
        Some("1.1")
    );
    assert_eq!(
        r.header("x-openstack-ironic-api-maximum-version"),
        Some(MAX)
    );
    assert_eq!(r.header("x-openstack-ironic-api-version"), Some("1.1"));

    let r = s
        .call(
            Method::GET,
            "/baremetal/v1",
            None,
            &[("x-openstack-ironic-api-version", "latest")],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.json["id"], "v1");
    assert_eq!(
        r.json["media_types"]["type"],
        "application/vnd.openstack.ironic.v1+json"
    );
    assert_eq!(
        r.json["nodes"][0]["href"],
        "http://test/baremetal/v1/nodes/"
    );
    assert!(r.json["lookup"].is_array() && r.json["conductors"].is_array());
    assert_eq!(r.header("x-openstack-ironic-api-version"), Some(MAX));
    assert!(r.header("openstack-request-id").is_some());

    // The generic header works too.
    let r = s
        .call(
            Method::GET,
            "/baremetal/v1",
            None,
            &[("openstack-api-version", "baremetal 1.31")],
            None,
        )
        .await;
    assert_eq!(r.header("x-openstack-ironic-api-version"), Some("1.31"));
    assert!(r.json.get("conductors").is_none(), "conductors are 1.49+");
}

#[tokio::test]
async fn versions_above_the_maximum_are_406_with_the_range() {
    let s = Stack::new(TestDb::sqlite().await).await;
    for path in ["/baremetal", "/baremetal/v1", "/baremetal/v1/nodes"] {
        let admin = s.admin.clone();
        let r = s
            .call(
                Method::GET,
                path,
                Some(&admin),
                &[("x-openstack-ironic-api-version", "1.999")],
                None,
            )
            .await;
        let msg = r.fault(StatusCode::NOT_ACCEPTABLE);
        assert!(msg.contains(&format!("[1.1, {MAX}]")), "{msg}");
        assert_eq!(
            r.header("x-openstack-ironic-api-maximum-version"),
            Some(MAX)
        );
        assert_eq!(
            r.header("x-openstack-ironic-api-minimum-version"),
            Some("1.1")
        );
    }
}

// ------------------------------------------------------------------ auth

#[tokio::test]
async fn auth_401_403_and_404() {
    let s = Stack::new(TestDb::sqlite().await).await;
    let r = s
        .call(Method::GET, "/baremetal/v1/nodes", None, &[], None)
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.raw);
    assert_eq!(r.json["error"]["code"], 401);
    let r = s
        .call(
            Method::GET,
            "/baremetal/v1/nodes",
            Some("garbage"),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let member = s.member.clone();
    for (m, path, body) in [
        (Method::GET, "/baremetal/v1/nodes", None),
        (
            Method::POST,
            "/baremetal/v1/nodes",
            Some(json!({"driver": "fake-hardware"})),
        ),
        (Method::GET, "/baremetal/v1/ports", None),
        (Method::GET, "/baremetal/v1/drivers", None),
    ] {
        let r = s.call(m, path, Some(&member), &[], body).await;
        let msg = r.fault(StatusCode::FORBIDDEN);
        assert!(
            msg.starts_with("Access was denied to the following resource: baremetal:"),
            "{msg}"
        );
    }

    let r = s.get("/nodes/7b5bd1f0-6c0e-4a2b-9a4f-0c0b5bd1f06c").await;
    assert_eq!(
        r.fault(StatusCode::NOT_FOUND),
        "Node 7b5bd1f0-6c0e-4a2b-9a4f-0c0b5bd1f06c could not be found."
    );
    let r = s.get("/nodes/no-such-node").await;
    assert_eq!(
        r.fault(StatusCode::NOT_FOUND),
        "Node no-such-node could not be found."
    );
    let r = s.get("/nowhere").await;
    r.fault(StatusCode::NOT_FOUND);
}

// ------------------------------------------------------------------ nodes

#[tokio::test]
async fn node_crud_on_every_backend() {
    for s in Stack::all().await {
        let n = s
            .node(json!({"driver": "fake-hardware", "name": "n1",
                "driver_info": {"ipmi_password": "s3cret", "user": "u"},
                "properties": {"cpus": 4}, "resource_class": "baremetal",
                "extra": {"rack": "a"}}))
            .await;
        let uuid = n["uuid"].as_str().unwrap().to_string();
        assert_eq!(n["provision_state"], "enroll");
        assert!(n["power_state"].is_null());
        assert_eq!(n["driver_info"]["ipmi_password"], "******");
        assert_eq!(n["driver_info"]["user"], "u");
        assert_eq!(n["power_interface"], "fake");
        assert_eq!(n["conductor"], "test-conductor");
        assert_eq!(
            n["links"][0]["href"],
            format!("http://test/baremetal/v1/nodes/{uuid}")
        );
        assert!(n["created_at"].as_str().unwrap().ends_with("+00:00"));

        // By name and by UUID.
        let r = s.get("/nodes/n1").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["uuid"], uuid);
        // Names are a 1.5 feature.
        let r = s.v1(Method::GET, "1.4", "/nodes/n1", None).await;
        r.fault(StatusCode::NOT_FOUND);

        // Duplicates.
        let r = s
            .post("/nodes", json!({"driver": "fake-hardware", "name": "n1"}))
            .await;
        assert_eq!(
            r.fault(StatusCode::CONFLICT),
            "A node with name n1 already exists."
        );
        let r = s
            .post("/nodes", json!({"driver": "fake-hardware", "uuid": uuid}))
            .await;
        assert_eq!(
            r.fault(StatusCode::CONFLICT),
            format!("A node with UUID {uuid} already exists.")
        );

        // Bad bodies.
        let r = s.post("/nodes", Value::String("{not json".into())).await;
        r.fault(StatusCode::BAD_REQUEST);
        let r = s.post("/nodes", json!({"driver": 5})).await;
        assert_eq!(
            r.fault(StatusCode::BAD_REQUEST),
            "Schema error for node: 5 is not of type 'string'"
        );
        let r = s.post("/nodes", json!({"name": "x"})).await;
        assert_eq!(
            r.fault(StatusCode::BAD_REQUEST),
            "Schema error for node: 'driver' is a required property"
        );
        let r = s
            .post("/nodes", json!({"driver": "fake-hardware", "bogus": 1}))
            .await;
        assert!(r
            .fault(StatusCode::BAD_REQUEST)
            .contains("'bogus' was unexpected"));
        let r = s.post("/nodes", json!({"driver": "nope"})).await;
        assert!(r
            .fault(StatusCode::BAD_REQUEST)
            .contains("No conductor service registered which supports driver nope"));
        let r = s
            .post(
                "/nodes",
                json!({"driver": "fake-hardware", "name": "bad name"}),
            )
            .await;
        assert_eq!(
            r.fault(StatusCode::BAD_REQUEST),
            "Cannot create node with invalid name 'bad name'"
        );
        let r = s
            .post(
                "/nodes",
                json!({"driver": "redfish", "boot_interface": "fake"}),
            )
            .await;
        assert!(r
            .fault(StatusCode::BAD_REQUEST)
            .contains("not supported by hardware type redfish"));

        // PATCH.
        let r = s
            .patch(
                &format!("/nodes/{uuid}"),
                json!([
                    {"op": "replace", "path": "/name", "value": "n1-renamed"},
                    {"op": "add", "path": "/extra/owner", "value": "ops"},
                    {"op": "remove", "path": "/extra/rack"},
                    {"op": "add", "path": "/driver_info/ipmi_address", "value": "10.0.0.1"},
                    {"op": "replace", "path": "/automated_clean", "value": "false"},
                ]),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["name"], "n1-renamed");
        assert_eq!(r.json["extra"], json!({"owner": "ops"}));
        assert_eq!(r.json["driver_info"]["ipmi_address"], "10.0.0.1");
        assert_eq!(r.json["driver_info"]["ipmi_password"], "******");
        assert_eq!(r.json["automated_clean"], false);
        let r = s
            .patch(
                &format!("/nodes/{uuid}"),
                json!([{"op": "remove", "path": "/extra/nope"}]),
            )
            .await;
        assert_eq!(
            r.fault(StatusCode::BAD_REQUEST),
            "Couldn't apply patch '{'op': 'remove', 'path': '/extra/nope'}'. Reason: can't \
             remove a non-existent object 'nope'"
        );
        let r = s
            .patch(
                &format!("/nodes/{uuid}"),
                json!([{"op": "replace", "path": "/provision_state", "value": "active"}]),
            )
            .await;
        assert!(r
            .fault(StatusCode::BAD_REQUEST)
            .starts_with("Cannot patch /provision_state."));
        let r = s
            .patch(&format!("/nodes/{uuid}"), json!({"op": "replace"}))
            .await;
        assert!(r
            .fault(StatusCode::BAD_REQUEST)
            .starts_with("Schema error for patch"));
        let r = s
            .patch(
                &format!("/nodes/{uuid}"),
                json!([{"op": "replace", "path": "/maintenance", "value": []}]),
            )
            .await;
        assert!(r.fault(StatusCode::BAD_REQUEST).contains("is not of type"));
        let r = s
            .patch(
                &format!("/nodes/{uuid}"),
                json!([{"op": "add", "path": "/traits", "value": ["CUSTOM_X"]}]),
            )
            .await;
        // Ironic refuses it as a field that cannot be patched.
        assert!(r
            .fault(StatusCode::BAD_REQUEST)
            .starts_with("Cannot patch /traits."));
        // A name taken by another node.
        s.fake_node("other").await;
        let r = s
            .patch(
                &format!("/nodes/{uuid}"),
                json!([{"op": "replace", "path": "/name", "value": "other"}]),
            )
            .await;
        assert_eq!(
            r.fault(StatusCode::CONFLICT),
            "A node with name other already exists."
        );

        // Fields newer than the request's version: 406.
        let r = s
            .v1(
                Method::POST,
                "1.50",
                "/nodes",
                Some(json!({"driver": "fake-hardware", "description": "d"})),
            )
            .await;
        r.fault(StatusCode::NOT_ACCEPTABLE);
        let r = s
            .v1(
                Method::GET,
                "1.49",
                &format!("/nodes/{uuid}?fields=owner"),
                None,
            )
            .await;
        r.fault(StatusCode::NOT_ACCEPTABLE);
        let r = s.get(&format!("/nodes/{uuid}?fields=uuid,bogus")).await;
        assert_eq!(
            r.fault(StatusCode::BAD_REQUEST),
            "Field bogus is not a valid field."
        );
        let r = s.get(&format!("/nodes/{uuid}?fields=uuid,name")).await;
        let keys: Vec<&String> = r.json.as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["links", "name", "uuid"], "{}", r.raw);
        // Old versions do not show newer fields; before 1.11 nodes start `available`.
        let r = s
            .v1(Method::GET, "1.1", &format!("/nodes/{uuid}"), None)
            .await;
        assert!(r.json.get("name").is_none() && r.json.get("resource_class").is_none());
        let r = s
            .v1(
                Method::POST,
                "1.10",
                "/nodes",
                Some(json!({"driver": "fake-hardware"})),
            )
            .await;
        assert_eq!(r.json["provision_state"], "available", "{}", r.raw);
        let old = r.json["uuid"].as_str().unwrap().to_string();

        // DELETE.
        let r = s.delete(&format!("/nodes/{uuid}")).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.get(&format!("/nodes/{uuid}"))
            .await
            .fault(StatusCode::NOT_FOUND);
        assert_eq!(
            s.delete(&format!("/nodes/{old}")).await.status,
            StatusCode::NO_CONTENT
        );
    }
}

#[tokio::test]
async fn node_lists_filters_and_pages() {
    let s = Stack::new(TestDb::sqlite().await).await;
    let mut uuids = Vec::new();
    for i in 0..5 {
        let rc = if i % 2 == 0 { "even" } else { "odd" };
        let n = s
            .node(
                json!({"driver": "fake-hardware", "name": format!("node-{i}"),
                "resource_class": rc, "maintenance": i == 4,
                "description": format!("rack {i}")}),
            )
            .await;
        uuids.push(n["uuid"].as_str().unwrap().to_string());
    }
    let r = s.get("/nodes").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let nodes = r.json["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 5);
    let mut keys: Vec<&String> = nodes[0].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "instance_uuid",
            "links",
            "maintenance",
            "name",
            "power_state",
            "provision_state",
            "uuid"
        ]
    );
    let r = s.get("/nodes/detail").await;
    assert!(r.json["nodes"][0].get("driver_info").is_some());
    let r = s.get("/nodes?detail=true").await;
    assert!(r.json["nodes"][0].get("driver_info").is_some());

    let count = |r: &common::Resp| r.json["nodes"].as_array().unwrap().len();
    assert_eq!(count(&s.get("/nodes?resource_class=odd").await), 2);
    assert_eq!(count(&s.get("/nodes?maintenance=true").await), 1);
    assert_eq!(
        count(&s.get("/nodes?maintenance=false&resource_class=even").await),
        2
    );
    assert_eq!(count(&s.get("/nodes?associated=false").await), 5);
    assert_eq!(count(&s.get("/nodes?associated=true").await), 0);
    assert_eq!(count(&s.get("/nodes?driver=fake-hardware").await), 5);
    assert_eq!(count(&s.get("/nodes?driver=redfish").await), 0);
    assert_eq!(count(&s.get("/nodes?provision_state=enroll").await), 5);
    assert_eq!(
        count(&s.get("/nodes?description_contains=rack%203").await),
        1
    );
    let r = s.get("/nodes?provision_state=bogus").await;
    assert_eq!(
        r.fault(StatusCode::BAD_REQUEST),
        "Provision state \"bogus\" is not valid"
    );
    let r = s
        .v1(Method::GET, "1.15", "/nodes?driver=fake-hardware", None)
        .await;
    assert_eq!(
        r.fault(StatusCode::NOT_ACCEPTABLE),
        "Request not acceptable. The minimal required API version should be 1.16"
    );
    let r = s.get("/nodes?maintenance=perhaps").await;
    assert!(r
        .fault(StatusCode::BAD_REQUEST)
        .starts_with("Invalid maintenance"));
    let r = s.get("/nodes?sort_key=driver_info").await;
    r.fault(StatusCode::BAD_REQUEST);
    let r = s.get("/nodes?bogus=1").await;
    assert_eq!(
        r.fault(StatusCode::BAD_REQUEST),
        "Unexpected arguments: bogus"
    );

    // Pages of two, following `next`.
    let mut seen = Vec::new();
    let mut url = "/nodes?limit=2".to_string();
    loop {
        let r = s.get(&url).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        for n in r.json["nodes"].as_array().unwrap() {
            seen.push(n["uuid"].as_str().unwrap().to_string());
        }
        match r.json["next"].as_str() {
            Some(next) => {
                let rest = next.split_once("/baremetal/v1").unwrap().1;
                url = rest.to_string();
            }
            None => break,
        }
    }
    assert_eq!(seen, uuids);
    // Descending by name.
    let r = s.get("/nodes?sort_key=name&sort_dir=desc&limit=2").await;
    let names: Vec<&str> = r.json["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["node-4", "node-3"]);
    let next = r.json["next"].as_str().unwrap();
    assert!(
        next.contains("sort_key=name") && next.contains("sort_dir=desc"),
        "{next}"
    );
    let r = s.get(next.split_once("/baremetal/v1").unwrap().1).await;
    assert_eq!(r.json["nodes"][0]["name"], "node-2", "{}", r.raw);
    let r = s.get("/nodes?limit=0").await;
    assert_eq!(r.fault(StatusCode::BAD_REQUEST), "Limit must be positive");
}

// ------------------------------------------------------------------ ports

#[tokio::test]
async fn ports_on_every_backend() {
    for s in Stack::all().await {
        let node = s.fake_node("pn").await;
        let r = s
            .post(
                "/ports",
                json!({"address": "AA:BB:CC:00:11:22", "node_uuid": node, "pxe_enabled": true,
                    "local_link_connection": {"port_id": "Eth1", "switch_id": "0A:1B:2C:3D:4E:5F"},
                    "extra": {"k": "v"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let port = r.json["uuid"].as_str().unwrap().to_string();
        assert_eq!(r.json["address"], "aa:bb:cc:00:11:22");
        assert_eq!(r.json["node_uuid"], node);
        assert_eq!(
            r.json["local_link_connection"]["switch_id"],
            "0a:1b:2c:3d:4e:5f"
        );
        assert!(r
            .header("location")
            .unwrap()
            .ends_with(&format!("/v1/ports/{port}")));

        let r = s
            .post(
                "/ports",
                json!({"address": "aa:bb:cc:00:11:22", "node_uuid": node}),
            )
            .await;
        assert_eq!(
            r.fault(StatusCode::CONFLICT),
            "A port with MAC address aa:bb:cc:00:11:22 already exists."
        );
        let r = s
            .post("/ports", json!({"address": "nope", "node_uuid": node}))
            .await;
        assert_eq!(
            r.fault(StatusCode::BAD_REQUEST),
            "Expected valid MAC address for address: nope"
        );
        let r = s
            .post(
                "/ports",
                json!({"address": "aa:bb:cc:00:11:23",
                    "node_uuid": "7b5bd1f0-6c0e-4a2b-9a4f-0c0b5bd1f06c"}),
            )
            .await;
        assert!(r
            .fault(StatusCode::BAD_REQUEST)
            .contains("could not be found"));
        let r = s
            .post("/ports", json!({"address": "aa:bb:cc:00:11:23"}))
            .await;
        r.fault(StatusCode::BAD_REQUEST);
        // node_ident is 1.94.
        let r = s
            .v1(
                Method::POST,
                "1.93",
                "/ports",
                Some(json!({"address": "aa:bb:cc:00:11:24", "node_ident": "pn"})),
            )
            .await;
        r.fault(StatusCode::NOT_ACCEPTABLE);
        let r = s
            .post(
                "/ports",
                json!({"address": "aa:bb:cc:00:11:24", "node_ident": "pn",
                "name": "second"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);

        let count = |r: &common::Resp| r.json["ports"].as_array().unwrap().len();
        assert_eq!(count(&s.get("/ports").await), 2);
        assert_eq!(count(&s.get(&format!("/ports?node={node}")).await), 2);
        assert_eq!(count(&s.get("/ports?node=pn").await), 2);
        assert_eq!(count(&s.get("/ports?address=AA:BB:CC:00:11:22").await), 1);
        assert_eq!(count(&s.get(&format!("/nodes/{node}/ports")).await), 2);
        let r = s.get("/nodes/pn/ports/detail").await;
        assert_eq!(r.json["ports"][0]["pxe_enabled"], true, "{}", r.raw);
        let r = s.get("/ports").await;
        let keys: Vec<&String> = r.json["ports"][0].as_object().unwrap().keys().collect();
        assert_eq!(keys, vec!["address", "links", "uuid"]);
        let r = s.get("/ports/second").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        // Fields gated by version.
        let r = s
            .v1(Method::GET, "1.18", &format!("/ports/{port}"), None)
            .await;
        assert!(r.json.get("pxe_enabled").is_none() && r.json.get("internal_info").is_some());

        let r = s
            .patch(
                &format!("/ports/{port}"),
                json!([{"op": "replace", "path": "/pxe_enabled", "value": false},
                       {"op": "add", "path": "/extra/x", "value": 1}]),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["pxe_enabled"], false);
        assert_eq!(r.json["extra"], json!({"k": "v", "x": 1}));
        let r = s
            .patch(
                &format!("/ports/{port}"),
                json!([{"op": "replace", "path": "/address", "value": "aa:bb:cc:00:11:24"}]),
            )
            .await;
        r.fault(StatusCode::CONFLICT);

        assert_eq!(
            s.delete(&format!("/ports/{port}")).await.status,
            StatusCode::NO_CONTENT
        );
        s.get(&format!("/ports/{port}"))
            .await
            .fault(StatusCode::NOT_FOUND);
        // Deleting the node takes its ports.
        assert_eq!(
            s.delete(&format!("/nodes/{node}")).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(count(&s.get("/ports").await), 0);
    }
}

// ------------------------------------------------------------------ the state machine

#[tokio::test]
async fn manage_provide_and_illegal_verbs() {
    let s = Stack::new(TestDb::sqlite().await).await;
    let n = s.fake_node("sm").await;
    // Illegal from enroll: Ironic's exact message.
    let r = s
        .put(
            &format!("/nodes/{n}/states/provision"),
            json!({"target": "provide"}),
        )
        .await;
    assert_eq!(
        r.fault(StatusCode::BAD_REQUEST),
        format!(
            "The requested action \"provide\" can not be performed on node \"{n}\" while it is \
             in state \"enroll\"."
        )
    );
    // `manage` is 1.4.
    let r = s
        .v1(
            Method::PUT,
            "1.3",
            &format!("/nodes/{n}/states/provision"),
            Some(json!({"target": "manage"})),
        )
        .await;
    r.fault(StatusCode::NOT_ACCEPTABLE);

    s.provision(&n, "manage").await;
    let node = s.wait_state(&n, "manageable").await;
    assert_eq!(node["power_state"], "power off");
    assert!(node["last_error"].is_null());
    assert!(node["reservation"].is_null());
    assert!(node["provision_updated_at"].is_string());
    let states = s.get(&format!("/nodes/{n}/states")).await;
    assert_eq!(
        states.json["provision_state"], "manageable",
        "{}",
        states.raw
    );

    // provide with automated cleaning on: accepted by the machine, not done yet.
    let r = s
        .put(
            &format!("/nodes/{n}/states/provision"),
            json!({"target": "provide"}),
        )
        .await;
    assert!(r
        .fault(StatusCode::BAD_REQUEST)
        .contains("not supported yet"));
    for t in ["inspect", "adopt"] {
        let r = s
            .put(
                &format!("/nodes/{n}/states/provision"),
                json!({"target": t}),
            )
            .await;
        assert!(
            r.fault(StatusCode::BAD_REQUEST)
                .contains("not supported yet"),
            "{t}"
        );
    }
    let r = s
        .put(
            &format!("/nodes/{n}/states/provision"),
            json!({"target": "clean"}),
        )
        .await;
    assert!(r
        .fault(StatusCode::BAD_REQUEST)
        .contains("\"clean_steps\" is required"));
    let r = s
        .put(
            &format!("/nodes/{n}/states/provision"),
            json!({"target": "active"}),
        )
        .await;
    assert!(r
        .fault(StatusCode::BAD_REQUEST)
        .contains("can not be performed"));
    let r = s
        .put(
            &format!("/nodes/{n}/states/provision"),
            json!({"target": "abort"}),
        )
        .await;
    assert!(r
        .fault(StatusCode::BAD_REQUEST)
        .contains("\"abort\" can not be performed"));
    let r = s
        .put(
            &format!("/nodes/{n}/states/provision"),
            json!({"target": 5}),
        )
        .await;
    r.fault(StatusCode::BAD_REQUEST);

    // Without automated cleaning, provide goes straight to available.
    let r = s
        .patch(
            &format!("/nodes/{n}"),
            json!([{"op": "replace", "path": "/automated_clean", "value": false}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    s.provision(&n, "provide").await;
    s.wait_state(&n, "available").await;
    // And back with manage.
    s.provision(&n, "manage").await;
    s.wait_state(&n, "manageable").await;
    // Deleting a node that is not in a deletable state needs maintenance.
    s.provision(&n, "provide").await;
    let r = s.delete(&format!("/nodes/{n}")).await;
    assert_eq!(
        r.status,
        StatusCode::NO_CONTENT,
        "available nodes are deletable: {}",
        r.raw
    );
}

#[tokio::test]
async fn verification_failures_go_back_to_enroll() {
    let s = Stack::new(TestDb::sqlite().await).await;
    let n = s.fake_node("bad-creds").await;
    s.svc.drivers().fake().machine(&n).wrong_credentials = true;
    s.provision(&n, "manage").await;
    let node = s.wait_state(&n, "enroll").await;
    let err = node["last_error"].as_str().unwrap();
    assert!(
        err.starts_with(&format!("Failed to get power state for node {n}.")),
        "{err}"
    );
    assert!(err.contains("refused the credentials"), "{err}");

    let n = s.fake_node("gone").await;
    s.svc.drivers().fake().machine(&n).unreachable = true;
    s.provision(&n, "manage").await;
    let node = s.wait_state(&n, "enroll").await;
    let err = node["last_error"].as_str().unwrap();
    assert!(
        err.contains("unreachable") && err.contains("after 3 attempts"),
        "{err}"
    );
    assert!(s.svc.drivers().fake().machine(&n).reads == 0);
}

// ------------------------------------------------------------------ power, boot device

#[tokio::test]
async fn power_actions_and_the_lock() {
    let s = Stack::new(TestDb::sqlite().await).await;
    let n = s.fake_node("pw").await;
    s.power(&n, "power on").await;
    s.wait_power(&n, "power on").await;
    assert!(s.svc.drivers().fake().machine(&n).powered_on);
    s.power(&n, "rebooting").await;
    s.wait_power(&n, "power on").await;
    s.power(&n, "soft power off").await;
    s.wait_power(&n, "power off").await;
    let r = s
        .put(
            &format!("/nodes/{n}/states/power"),
            json!({"target": "sideways"}),
        )
        .await;
    assert_eq!(
        r.fault(StatusCode::BAD_REQUEST),
        format!(
            "The requested action \"sideways\" can not be performed on node \"{n}\" while it \
             is in state \"power off\"."
        )
    );
    let r = s
        .v1(
            Method::PUT,
            "1.26",
            &format!("/nodes/{n}/states/power"),
            Some(json!({"target": "soft power off"})),
        )
        .await;
    r.fault(StatusCode::NOT_ACCEPTABLE);
    let r = s
        .put(
            &format!("/nodes/{n}/states/power"),
            json!({"target": "power on", "timeout": 0}),
        )
        .await;
    assert_eq!(
        r.fault(StatusCode::BAD_REQUEST),
        "timeout has to be positive integer"
    );

    // A power change the host has not made yet: the node stays locked, with its target.
    s.svc.drivers().fake().machine(&n).hold_power = true;
    s.power(&n, "power on").await;
    let node = s
        .wait_node(&n, "an action in flight", |n| {
            n["target_power_state"] == "power on" && n["reservation"] == "test-conductor"
        })
        .await;
    assert_eq!(node["power_state"], "power off");
    let r = s
        .put(
            &format!("/nodes/{n}/states/power"),
            json!({"target": "power off"}),
        )
        .await;
    assert_eq!(
        r.fault(StatusCode::CONFLICT),
        format!(
            "Node {n} is locked by host test-conductor, please retry after the current \
             operation is completed."
        )
    );
    let r = s
        .patch(
            &format!("/nodes/{n}"),
            json!([{"op": "add", "path": "/extra/a", "value": 1}]),
        )
        .await;
    r.fault(StatusCode::CONFLICT);
    s.delete(&format!("/nodes/{n}"))
        .await
        .fault(StatusCode::CONFLICT);
    s.svc.drivers().fake().release_power(&n);
    let node = s.wait_power(&n, "power on").await;
    assert!(node["reservation"].is_null());

    // BMC faults are retried; past the retries the action fails, power unchanged.
    s.svc.drivers().fake().machine(&n).fail_power_actions = 2;
    s.power(&n, "power off").await;
    s.wait_power(&n, "power off").await;
    s.svc.drivers().fake().machine(&n).fail_power_actions = 10;
    s.power(&n, "power on").await;
    let node = s
        .wait_node(&n, "a failed action", |n| {
            n["target_power_state"].is_null() && n["last_error"].is_string()
        })
        .await;
    assert_eq!(node["power_state"], "power off");
    assert!(node["last_error"]
        .as_str()
        .unwrap()
        .starts_with("Failed to change power state to 'power on' by 'power on': "));
}

#[tokio::test]
async fn boot_device_maintenance_validate_traits() {
    let s = Stack::new(TestDb::sqlite().await).await;
    let n = s.fake_node("bd").await;
    let r = s
        .put(
            &format!("/nodes/{n}/management/boot_device"),
            json!({"boot_device": "pxe", "persistent": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    let r = s.get(&format!("/nodes/{n}/management/boot_device")).await;
    assert_eq!(r.json, json!({"boot_device": "pxe", "persistent": true}));
    let r = s
        .get(&format!("/nodes/{n}/management/boot_device/supported"))
        .await;
    assert_eq!(
        r.json["supported_boot_devices"],
        json!(["pxe", "disk", "cdrom", "bios"])
    );
    let r = s
        .put(
            &format!("/nodes/{n}/management/boot_device"),
            json!({"boot_device": "floppy"}),
        )
        .await;
    assert_eq!(
        r.fault(StatusCode::BAD_REQUEST),
        "Invalid boot device floppy specified."
    );

    let r = s
        .put(
            &format!("/nodes/{n}/maintenance"),
            json!({"reason": "disk swap"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
    let node = s.get(&format!("/nodes/{n}")).await.json;
    assert_eq!(node["maintenance"], true);
    assert_eq!(node["maintenance_reason"], "disk swap");
    let r = s.delete(&format!("/nodes/{n}/maintenance")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
    let node = s.get(&format!("/nodes/{n}")).await.json;
    assert_eq!(node["maintenance"], false);
    assert!(node["maintenance_reason"].is_null());

    let r = s.get(&format!("/nodes/{n}/validate")).await;
    assert_eq!(r.json["power"]["result"], true, "{}", r.raw);
    assert_eq!(r.json["management"]["result"], true);
    let rf = s
        .node(json!({"driver": "redfish", "driver_info": {}}))
        .await;
    let rf = rf["uuid"].as_str().unwrap();
    let r = s.get(&format!("/nodes/{rf}/validate")).await;
    assert_eq!(r.json["power"]["result"], false, "{}", r.raw);
    assert!(r.json["power"]["reason"]
        .as_str()
        .unwrap()
        .contains("redfish_address"));
    assert_eq!(r.json["rescue"]["result"], Value::Null);
    assert_eq!(r.json["deploy"]["result"], false);
    let r = s.get(&format!("/nodes/validate?node={rf}")).await;
    assert_eq!(r.json["power"]["result"], false, "{}", r.raw);

    // Traits.
    let r = s
        .put(
            &format!("/nodes/{n}/traits"),
            json!({"traits": ["CUSTOM_B", "HW_CPU_X86_AVX2"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    let r = s
        .put(&format!("/nodes/{n}/traits/CUSTOM_A"), Value::Null)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    let r = s.get(&format!("/nodes/{n}/traits")).await;
    assert_eq!(
        r.json["traits"],
        json!(["CUSTOM_A", "CUSTOM_B", "HW_CPU_X86_AVX2"])
    );
    let r = s
        .put(&format!("/nodes/{n}/traits/lower"), Value::Null)
        .await;
    r.fault(StatusCode::BAD_REQUEST);
    let r = s.delete(&format!("/nodes/{n}/traits/CUSTOM_Z")).await;
    assert_eq!(
        r.fault(StatusCode::NOT_FOUND),
        format!("Node {n} doesn't have a trait 'CUSTOM_Z'")
    );
    assert_eq!(
        s.delete(&format!("/nodes/{n}/traits/CUSTOM_A"))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.delete(&format!("/nodes/{n}/traits")).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        s.get(&format!("/nodes/{n}/traits")).await.json["traits"],
        json!([])
    );
    let r = s.get(&format!("/nodes/{n}")).await;
    assert_eq!(r.json["traits"], json!([]));
}

#[tokio::test]
async fn drivers_and_conductors() {
    let s = Stack::new(TestDb::sqlite().await).await;
    let r = s.get("/drivers").await;
    let names: Vec<&str> = r.json["drivers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["fake-hardware", "ipmi", "redfish"]);
    assert_eq!(r.json["drivers"][0]["hosts"], json!(["test-conductor"]));
    assert_eq!(r.json["drivers"][0]["type"], "dynamic");
    let r = s.get("/drivers?type=classic").await;
    assert_eq!(r.json["drivers"], json!([]));
    let r = s.get("/drivers/redfish").await;
    assert_eq!(r.json["default_power_interface"], "redfish", "{}", r.raw);
    assert_eq!(r.json["enabled_management_interfaces"], json!(["redfish"]));
    let r = s.get("/drivers/redfish/properties").await;
    assert!(r.json["redfish_address"].is_string(), "{}", r.raw);
    let r = s.get("/drivers/ipmi/properties").await;
    assert!(r.json["ipmi_address"].is_string(), "{}", r.raw);
    s.get("/drivers/nope").await.fault(StatusCode::NOT_FOUND);

    let r = s.get("/conductors").await;
    assert_eq!(
        r.json["conductors"][0]["hostname"], "test-conductor",
        "{}",
        r.raw
    );
    assert_eq!(r.json["conductors"][0]["alive"], true);
    let r = s.get("/conductors/test-conductor").await;
    assert_eq!(
        r.json["drivers"],
        json!(["fake-hardware", "ipmi", "redfish"]),
        "{}",
        r.raw
    );
    s.get("/conductors/other")
        .await
        .fault(StatusCode::NOT_FOUND);
    s.v1(Method::GET, "1.48", "/conductors", None)
        .await
        .fault(StatusCode::NOT_FOUND);
}

// ------------------------------------------------------------------ the ramdisk endpoints

#[tokio::test]
async fn lookup_and_heartbeat_without_keystone() {
    let s = Stack::new(TestDb::sqlite().await).await;
    let n = s.fake_node("agent").await;
    let r = s
        .post(
            "/ports",
            json!({"address": "52:54:00:aa:bb:cc", "node_uuid": n}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let hdr = [("x-openstack-ironic-api-version", LATEST)];
    let r = s
        .call(
            Method::GET,
            "/baremetal/v1/lookup?addresses=52:54:00:AA:BB:CC,zz",
            None,
            &hdr,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    assert_eq!(r.json["node"]["uuid"], n);
    let token = r.json["config"]["agent_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 43);
    assert_eq!(r.json["config"]["agent_token_required"], true);
    assert_eq!(
        r.json["node"]["driver_internal_info"]["agent_secret_token"],
        "******"
    );
    // Handed out once.
    let r = s
        .call(
            Method::GET,
            &format!("/baremetal/v1/lookup?node_uuid={n}"),
            None,
            &hdr,
            None,
        )
        .await;
    assert_eq!(r.json["config"]["agent_token"], "******", "{}", r.raw);
    let r = s
        .call(Method::GET, "/baremetal/v1/lookup", None, &hdr, None)
        .await;
    r.fault(StatusCode::BAD_REQUEST);
    let r = s
        .call(
            Method::GET,
            "/baremetal/v1/lookup?addresses=52:54:00:00:00:01",
            None,
            &hdr,
            None,
        )
        .await;
    assert_eq!(
        r.fault(StatusCode::NOT_FOUND),
        "Resource could not be found."
    );

    let beat = |body: Value| {
        let path = format!("/baremetal/v1/heartbeat/{n}");
        let s = &s;
        async move { s.call(Method::POST, &path, None, &hdr, Some(body)).await }
    };
    let r = beat(json!({"callback_url": "http://10.0.0.5:9999", "agent_token": "wrong"})).await;
    assert_eq!(
        r.fault(StatusCode::BAD_REQUEST),
        "Invalid or missing agent token received."
    );
    let r = beat(json!({"callback_url": "http://10.0.0.5:9999"})).await;
    assert_eq!(
        r.fault(StatusCode::BAD_REQUEST),
        "Agent token is required for heartbeat processing."
    );
    let r = beat(json!({"callback_url": "ftp://x", "agent_token": token})).await;
    r.fault(StatusCode::BAD_REQUEST);
    let r = beat(
        json!({"callback_url": "http://10.0.0.5:9999", "agent_token": token,
        "agent_version": "9.0.0"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
    let node = s.get(&format!("/nodes/{n}")).await.json;
    assert_eq!(
        node["driver_internal_info"]["agent_url"],
        "http://10.0.0.5:9999"
    );
    assert_eq!(node["driver_internal_info"]["agent_version"], "9.0.0");
    let r = beat(json!({"callback_url": "http://10.0.0.6:9999", "agent_token": token})).await;
    assert!(r.fault(StatusCode::BAD_REQUEST).contains("callback_url"));
    // Below 1.22 the endpoints do not exist.
    let r = s
        .call(
            Method::GET,
            &format!("/baremetal/v1/lookup?node_uuid={n}"),
            None,
            &[("x-openstack-ironic-api-version", "1.21")],
            None,
        )
        .await;
    r.fault(StatusCode::NOT_FOUND);

    // Without fast track, a node in enroll is not looked up.
    let mut cfg = common::test_config();
    cfg.fast_track = false;
    let s2 = Stack::with(TestDb::sqlite().await, cfg, true).await;
    let n2 = s2.fake_node("slow").await;
    let r = s2
        .call(
            Method::GET,
            &format!("/baremetal/v1/lookup?node_uuid={n2}"),
            None,
            &hdr,
            None,
        )
        .await;
    r.fault(StatusCode::NOT_FOUND);
}

// ------------------------------------------------------------------ real BMCs

async fn fleet(hosts: u32, tls: bool) -> (tempfile::TempDir, Fleet) {
    let dir = tempfile::tempdir().unwrap();
    let f = Fleet::start(
        FleetOptions {
            hosts,
            tls,
            ..Default::default()
        },
        dir.path(),
        Arc::new(LogBoots),
    )
    .await
    .unwrap();
    (dir, f)
}

/// `driver_info` for the fleet's host `i` over Redfish.
fn redfish_info(f: &Fleet, i: usize, extra: Value) -> Value {
    let e = &f.entries()[i];
    let (addr, path) = e.redfish.split_once("/redfish").unwrap();
    let mut info = json!({"redfish_address": addr, "redfish_system_id": format!("/redfish{path}"),
        "redfish_username": e.username, "redfish_password": e.password});
    for (k, v) in extra.as_object().unwrap() {
        info[k] = v.clone();
    }
    info
}

#[tokio::test]
async fn redfish_nodes_against_the_simulator() {
    let s = Stack::new(TestDb::sqlite().await).await;
    let (_dir, f) = fleet(3, false).await;
    let host = f.hosts()[0].clone();

    let n = s
        .node(json!({"driver": "redfish", "name": "rf-0",
            "driver_info": redfish_info(&f, 0, json!({}))}))
        .await;
    let n = n["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        s.get(&format!("/nodes/{n}")).await.json["driver_info"]["redfish_password"],
        "******"
    );
    s.provision(&n, "manage").await;
    let node = s.wait_state(&n, "manageable").await;
    assert_eq!(node["power_state"], "power off");

    s.power(&n, "power on").await;
    s.wait_power(&n, "power on").await;
    assert_eq!(host.reported_power(), "On");
    let boots = host.boot_count();
    s.power(&n, "rebooting").await;
    s.wait_power(&n, "power on").await;
    assert_eq!(host.boot_count(), boots + 1);
    s.power(&n, "power off").await;
    s.wait_power(&n, "power off").await;
    assert_eq!(host.reported_power(), "Off");

    let r = s
        .put(
            &format!("/nodes/{n}/management/boot_device"),
            json!({"boot_device": "pxe", "persistent": false}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    assert_eq!(host.boot_override().target.as_str(), "Pxe");
    let r = s.get(&format!("/nodes/{n}/management/boot_device")).await;
    assert_eq!(r.json, json!({"boot_device": "pxe", "persistent": false}));

    // The sync follows the host when someone else powers it.
    host.set_power(strata_sim::PowerState::On);
    s.svc.sync_power_states().await.unwrap();
    assert_eq!(
        s.get(&format!("/nodes/{n}")).await.json["power_state"],
        "power on"
    );

    // Wrong password: back to enroll, naming the credentials.
    let bad = s
        .node(json!({"driver": "redfish",
            "driver_info": redfish_info(&f, 1, json!({"redfish_password": "nope"}))}))
        .await;
    let bad = bad["uuid"].as_str().unwrap().to_string();
    s.provision(&bad, "manage").await;
    let node = s.wait_state(&bad, "enroll").await;
    let err = node["last_error"].as_str().unwrap();
    assert!(err.contains("wrong credentials"), "{err}");

    // An unreachable BMC: retried, then enroll with a readable error.
    let gone = &f.hosts()[2];
    let mut faults = gone.faults();
    faults.unreachable = true;
    gone.set_faults(faults);
    let un = s
        .node(json!({"driver": "redfish", "driver_info": redfish_info(&f, 2, json!({}))}))
        .await;
    let un = un["uuid"].as_str().unwrap().to_string();
    s.provision(&un, "manage").await;
    let node = s.wait_state(&un, "enroll").await;
    let err = node["last_error"].as_str().unwrap();
    assert!(
        err.contains("Redfish BMC") && err.contains("after 3 attempts"),
        "{err}"
    );
    f.shutdown().await;
}

#[tokio::test]
async fn redfish_tls_verification() {
    let s = Stack::new(TestDb::sqlite().await).await;
    let (_dir, f) = fleet(1, true).await;
    let ca = f.ca_path().unwrap().display().to_string();
    let with_ca = s
        .node(json!({"driver": "redfish",
            "driver_info": redfish_info(&f, 0, json!({"redfish_verify_ca": ca}))}))
        .await;
    let with_ca = with_ca["uuid"].as_str().unwrap().to_string();
    s.provision(&with_ca, "manage").await;
    s.wait_state(&with_ca, "manageable").await;

    let without = s
        .node(json!({"driver": "redfish", "driver_info": redfish_info(&f, 0, json!({}))}))
        .await;
    let without = without["uuid"].as_str().unwrap().to_string();
    s.provision(&without, "manage").await;
    let node = s.wait_state(&without, "enroll").await;
    let err = node["last_error"].as_str().unwrap();
    assert!(err.contains("TLS certificate verification failed"), "{err}");
    assert!(!err.contains("attempts"), "not retried: {err}");

    let off = s
        .node(json!({"driver": "redfish",
            "driver_info": redfish_info(&f, 0, json!({"redfish_verify_ca": false}))}))
        .await;
    let off = off["uuid"].as_str().unwrap().to_string();
    s.provision(&off, "manage").await;
    s.wait_state(&off, "manageable").await;
    f.shutdown().await;
}

#[tokio::test]
async fn ipmi_nodes_against_a_fake_bmc() {
    use strata_ipmi::{Credentials, FakeBmc, IpmiServer};
    let s = Stack::new(TestDb::sqlite().await).await;
    let fake = Arc::new(FakeBmc::new(false));
    let server = IpmiServer::bind(
        "127.0.0.1:0".parse().unwrap(),
        Credentials::new("admin", "password"),
        fake.clone(),
    )
    .await
    .unwrap();
    let port = server.local_addr().port();
    let n = s
        .node(
            json!({"driver": "ipmi", "driver_info": {"ipmi_address": "127.0.0.1",
            "ipmi_port": port, "ipmi_username": "admin", "ipmi_password": "password"}}),
        )
        .await;
    assert_eq!(n["power_interface"], "ipmitool");
    assert_eq!(n["driver_info"]["ipmi_password"], "******");
    let n = n["uuid"].as_str().unwrap().to_string();
    s.provision(&n, "manage").await;
    s.wait_state(&n, "manageable").await;
    s.power(&n, "power on").await;
    s.wait_power(&n, "power on").await;
    assert!(fake.snapshot().powered_on);
    let r = s
        .put(
            &format!("/nodes/{n}/management/boot_device"),
            json!({"boot_device": "disk", "persistent": true}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    let r = s.get(&format!("/nodes/{n}/management/boot_device")).await;
    assert_eq!(r.json, json!({"boot_device": "disk", "persistent": true}));
    s.power(&n, "power off").await;
    s.wait_power(&n, "power off").await;
    assert!(!fake.snapshot().powered_on);

    let bad = s
        .node(
            json!({"driver": "ipmi", "driver_info": {"ipmi_address": "127.0.0.1",
            "ipmi_port": port, "ipmi_username": "admin", "ipmi_password": "wrong"}}),
        )
        .await;
    let bad = bad["uuid"].as_str().unwrap().to_string();
    s.provision(&bad, "manage").await;
    let node = s.wait_state(&bad, "enroll").await;
    assert!(
        node["last_error"]
            .as_str()
            .unwrap()
            .contains("wrong credentials"),
        "{}",
        node["last_error"]
    );
    server.shutdown().await;
}

// ------------------------------------------------------------------ restarts, the sync

#[tokio::test]
async fn a_node_left_verifying_is_resumed_after_a_restart() {
    for db in TestDb::all().await {
        // A process that records `manage` and dies before its conductor runs.
        let first = Stack::with(db, common::test_config(), false).await;
        let n = first.fake_node("resume").await;
        first.provision(&n, "manage").await;
        let node = first.get(&format!("/nodes/{n}")).await.json;
        assert_eq!(node["provision_state"], "verifying");
        assert_eq!(node["target_provision_state"], "manageable");
        assert_eq!(node["reservation"], "test-conductor");
        let db = first.kill().await;
        // A fresh service on the same store picks the work up.
        let second = Stack::with(db, common::test_config(), true).await;
        let node = second.wait_state(&n, "manageable").await;
        assert_eq!(node["power_state"], "power off");
        assert!(node["reservation"].is_null());
    }
}

#[tokio::test]
async fn power_sync_follows_the_hardware_and_faults_into_maintenance() {
    let s = Stack::new(TestDb::sqlite().await).await;
    let n = s.fake_node("sync").await;
    s.provision(&n, "manage").await;
    s.wait_state(&n, "manageable").await;
    s.svc.drivers().fake().machine(&n).powered_on = true;
    s.svc.sync_power_states().await.unwrap();
    assert_eq!(
        s.get(&format!("/nodes/{n}")).await.json["power_state"],
        "power on"
    );
    // Nodes in enroll are left alone.
    let e = s.fake_node("enrolled").await;
    s.svc.drivers().fake().machine(&e).powered_on = true;
    s.svc.sync_power_states().await.unwrap();
    assert!(s.get(&format!("/nodes/{e}")).await.json["power_state"].is_null());

    // Three failed reads: maintenance with the fault `power failure`.
    s.svc.drivers().fake().machine(&n).unreachable = true;
    for _ in 0..3 {
        s.svc.sync_power_states().await.unwrap();
    }
    let node = s.get(&format!("/nodes/{n}")).await.json;
    assert_eq!(node["maintenance"], true, "{node}");
    assert_eq!(node["fault"], "power failure");
    assert!(node["power_state"].is_null());
    let r = s.get("/nodes?fault=power%20failure").await;
    assert_eq!(r.json["nodes"].as_array().unwrap().len(), 1, "{}", r.raw);
    // The BMC answers again: out of maintenance.
    s.svc.drivers().fake().machine(&n).unreachable = false;
    s.svc.sync_power_states().await.unwrap();
    let node = s.get(&format!("/nodes/{n}")).await.json;
    assert_eq!(node["maintenance"], false, "{node}");
    assert!(node["fault"].is_null());
    assert_eq!(node["power_state"], "power on");
}
