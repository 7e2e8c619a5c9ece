//! Interfaces of servers (`os-interface`) with the network service in process: list and show
//! in Nova's view (2.70 tags), attach by network (with a fixed IP, with a tag) and by port,
//! the new VIF in the host agent's desired state, detach deleting the ports made for the
//! server and unbinding the user's, `preserve_on_delete` on server delete, the instance
//! actions, and Nova's 400/403/404/409s.

mod common;

use common::{Cloud, Resp, Stack};
use http::{Method, StatusCode};
use serde_json::{json, Value};

async fn neutron(s: &Stack, method: Method, rest: &str, token: &str, body: Option<Value>) -> Resp {
    s.raw(
        method,
        &format!("/network/v2.0{rest}"),
        Some(token),
        &[],
        body,
    )
    .await
}

/// A network with a /24 subnet in `token`'s project; returns `(network, subnet)`.
async fn network(s: &Stack, token: &str, name: &str, cidr: &str) -> (String, String) {
    let r = neutron(
        s,
        Method::POST,
        "/networks",
        token,
        Some(json!({"network": {"name": name}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    let net = r.json["network"]["id"].as_str().unwrap().to_string();
    let r = neutron(
        s,
        Method::POST,
        "/subnets",
        token,
        Some(json!({"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    (net, r.json["subnet"]["id"].as_str().unwrap().to_string())
}

/// A free port on `net` owned by `token`'s project.
async fn port(s: &Stack, token: &str, net: &str) -> String {
    let r = neutron(
        s,
        Method::POST,
        "/ports",
        token,
        Some(json!({"port": {"network_id": net}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    r.json["port"]["id"].as_str().unwrap().to_string()
}

/// The port as the admin sees it (`None`: gone).
async fn port_of(s: &Stack, id: &str) -> Option<Value> {
    let r = neutron(s, Method::GET, &format!("/ports/{id}"), &s.admin, None).await;
    match r.status {
        StatusCode::OK => Some(r.json["port"].clone()),
        StatusCode::NOT_FOUND => None,
        other => panic!("port {id}: {other} {}", r.raw),
    }
}

fn path(server: &str) -> String {
    format!("/servers/{server}/os-interface")
}

async fn boot_active(s: &Stack, cloud: &Cloud, name: &str) -> String {
    let id = s.boot(cloud, &s.u1, name, json!({})).await;
    s.wait_server(&id, "ACTIVE", |r| {
        r.json["server"]["status"] == "ACTIVE"
            && r.json["server"]["OS-EXT-STS:task_state"].is_null()
    })
    .await;
    id
}

/// The VIFs (port ids) the host's agent is asked to give the server.
async fn vifs(s: &Stack, host: &str, server: &str) -> Vec<String> {
    let d = strata_compute::agent::desired(&s.svc, host, 0, std::time::Duration::ZERO)
        .await
        .unwrap();
    d.instances
        .iter()
        .find(|i| i.uuid == server)
        .map(|i| i.vifs.iter().map(|v| v.port_id.clone()).collect())
        .unwrap_or_default()
}

/// The server's actions, oldest first, with their events' names and results.
async fn actions(s: &Stack, id: &str) -> Vec<(String, Vec<(String, Option<String>)>)> {
    let mut out: Vec<_> = strata_compute::server_db::actions(&s.db.store, id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.action,
                a.events.into_iter().map(|e| (e.event, e.result)).collect(),
            )
        })
        .collect();
    out.reverse();
    out
}

/// Checks an attachment against Tempest's `interface_common_info` (plus `tag` at 2.70).
fn assert_view(v: &Value, tagged: bool) {
    let o = v.as_object().expect("object");
    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut want = vec!["fixed_ips", "mac_addr", "net_id", "port_id", "port_state"];
    if tagged {
        want.push("tag");
        want.sort_unstable();
    }
    assert_eq!(keys, want, "{v}");
    for ip in v["fixed_ips"].as_array().unwrap() {
        let mut k: Vec<&str> = ip.as_object().unwrap().keys().map(String::as_str).collect();
        k.sort_unstable();
        assert_eq!(k, ["ip_address", "subnet_id"], "{v}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_list_show_and_detach() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "nics").await;
        // The port the build made.
        let r = s.get(&path(&id), &s.u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let list = r.json["interfaceAttachments"].as_array().unwrap().clone();
        assert_eq!(list.len(), 1, "{}", r.raw);
        assert_view(&list[0], false);
        assert_eq!(list[0]["net_id"], cloud.net);
        assert_eq!(list[0]["fixed_ips"][0]["subnet_id"], cloud.subnet);
        let first = list[0]["port_id"].as_str().unwrap().to_string();
        let r = s
            .get_mv(&format!("{}/{first}", path(&id)), &s.reader, "2.70")
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_view(&r.json["interfaceAttachment"], true);
        assert_eq!(r.json["interfaceAttachment"]["tag"], Value::Null);
        assert_eq!(
            r.json["interfaceAttachment"]["mac_addr"],
            list[0]["mac_addr"]
        );

        // Attach by network, tagged (2.49): a port made in the server's project, bound to its
        // host, and a new VIF for the agent.
        let (net2, sub2) = network(&s, &s.u1, "net2", "10.2.0.0/24").await;
        let r = s
            .post_mv(
                &path(&id),
                &s.u1,
                "2.49",
                json!({"interfaceAttachment": {"net_id": net2, "tag": "nic2"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let att = &r.json["interfaceAttachment"];
        assert_view(att, false);
        assert_eq!(att["net_id"], net2);
        assert_eq!(att["fixed_ips"][0]["subnet_id"], sub2);
        let p2 = att["port_id"].as_str().unwrap().to_string();
        let np = port_of(&s, &p2).await.unwrap();
        assert_eq!(np["device_id"], id);
        assert_eq!(np["device_owner"], "compute:nova");
        assert_eq!(np["binding:host_id"], "fake-1");
        assert_eq!(np["project_id"], s.p1);
        assert_eq!(
            vifs(&s, "fake-1", &id).await,
            vec![first.clone(), p2.clone()]
        );
        let shown = s.get_mv(&format!("/servers/{id}"), &s.u1, "latest").await;
        assert!(
            shown.json["server"]["addresses"]["net2"].is_array(),
            "{}",
            shown.raw
        );

        // Attach the user's port, then a fixed IP on the first network.
        let p3 = port(&s, &s.u1, &cloud.net).await;
        let r = s
            .post(
                &path(&id),
                &s.u1,
                json!({"interfaceAttachment": {"port_id": p3}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["interfaceAttachment"]["port_id"], p3);
        assert_eq!(port_of(&s, &p3).await.unwrap()["device_id"], id);
        let r = s
            .post(
                &path(&id),
                &s.u1,
                json!({"interfaceAttachment": {"net_id": cloud.net,
                    "fixed_ips": [{"ip_address": "10.1.0.77"}]}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            r.json["interfaceAttachment"]["fixed_ips"][0]["ip_address"],
            "10.1.0.77"
        );
        let p4 = r.json["interfaceAttachment"]["port_id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = s.get_mv(&path(&id), &s.u1, "2.70").await;
        let list = r.json["interfaceAttachments"].as_array().unwrap().clone();
        assert_eq!(list.len(), 4, "{}", r.raw);
        for v in &list {
            assert_view(v, true);
        }
        let tag_of = |p: &str| {
            list.iter()
                .find(|v| v["port_id"] == p)
                .map(|v| v["tag"].clone())
                .unwrap()
        };
        assert_eq!(tag_of(&p2), json!("nic2"));
        assert_eq!(tag_of(&p3), Value::Null);
        assert_eq!(vifs(&s, "fake-1", &id).await.len(), 4);

        // Detach: the user's port is unbound and kept, the one made for the server deleted.
        let r = s.delete(&format!("{}/{p3}", path(&id)), &s.u1).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let kept = port_of(&s, &p3).await.expect("the user's port is kept");
        assert_eq!(kept["device_id"], "");
        assert_eq!(kept["binding:host_id"], "");
        let r = s.delete(&format!("{}/{p2}", path(&id)), &s.u1).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        assert!(
            port_of(&s, &p2).await.is_none(),
            "the port made for it is gone"
        );
        let left = vifs(&s, "fake-1", &id).await;
        assert_eq!(left, vec![first.clone(), p4.clone()]);
        // The tags still follow their ports after the renumbering.
        let r = s.get_mv(&path(&id), &s.u1, "2.70").await;
        assert_eq!(r.json["interfaceAttachments"].as_array().unwrap().len(), 2);
        let shown = s.get_mv(&format!("/servers/{id}"), &s.u1, "latest").await;
        assert!(
            shown.json["server"]["addresses"]["net2"].is_null(),
            "{}",
            shown.raw
        );

        let acts = actions(&s, &id).await;
        let names: Vec<&str> = acts.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(
            names,
            [
                "create",
                "attach_interface",
                "attach_interface",
                "attach_interface",
                "detach_interface",
                "detach_interface"
            ]
        );
        for (a, ev) in &acts[1..] {
            let event = format!("compute_{a}");
            assert_eq!(ev, &[(event, Some("Success".to_string()))]);
        }
        let r = s
            .get(&format!("/servers/{id}/os-instance-actions"), &s.u1)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["instanceActions"][0]["action"], "detach_interface");

        // preserve_on_delete: a user's port attached survives the server's deletion unbound;
        // the ports made for the server go with it.
        let p5 = port(&s, &s.u1, &cloud.net).await;
        let r = s
            .post(
                &path(&id),
                &s.u1,
                json!({"interfaceAttachment": {"port_id": p5}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            s.delete(&format!("/servers/{id}"), &s.u1).await.status,
            StatusCode::NO_CONTENT
        );
        s.wait_gone(&id).await;
        let kept = port_of(&s, &p5).await.expect("the user's port survives");
        assert_eq!(kept["device_id"], "");
        assert!(port_of(&s, &p4).await.is_none());
        assert!(port_of(&s, &first).await.is_none());
        drop(cloud);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_and_detach_refusals() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "r1").await;
        let other = boot_active(&s, &cloud, "r2").await;
        let nope = uuid::Uuid::new_v4().to_string();
        let attach = |token: &'static str, body: Value| {
            let s = &s;
            let id = id.clone();
            async move {
                let t = match token {
                    "u1" => s.u1.clone(),
                    "u2" => s.u2.clone(),
                    "reader" => s.reader.clone(),
                    _ => s.admin.clone(),
                };
                s.post(&path(&id), &t, body).await
            }
        };
        // Visibility and policy.
        s.get(&path(&nope), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get(&path(&id), &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        attach("u2", json!({"interfaceAttachment": {}}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert_eq!(s.get(&path(&id), &s.reader).await.status, StatusCode::OK);
        attach(
            "reader",
            json!({"interfaceAttachment": {"net_id": cloud.net}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        // The body.
        let m = attach("u1", json!({"interfaceAttachment": {"port_id": "x"}})).await;
        assert!(m
            .assert_error(StatusCode::BAD_REQUEST)
            .contains("is not a 'uuid'"));
        attach("u1", json!({"interfaceAttachment": {"what": 1}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        attach(
            "u1",
            json!({"interfaceAttachment": {"net_id": cloud.net, "tag": "t"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        let m = attach(
            "u1",
            json!({"interfaceAttachment": {"net_id": cloud.net, "port_id": nope}}),
        )
        .await;
        assert_eq!(
            m.assert_error(StatusCode::BAD_REQUEST),
            "Must not input both network_id and port_id"
        );
        let m = attach(
            "u1",
            json!({"interfaceAttachment": {"fixed_ips": [{"ip_address": "10.1.0.9"}]}}),
        )
        .await;
        assert_eq!(
            m.assert_error(StatusCode::BAD_REQUEST),
            "Must input network_id when request IP address"
        );
        attach(
            "u1",
            json!({"interfaceAttachment": {"net_id": cloud.net,
                "fixed_ips": [{"ip_address": "nonsense"}]}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        // Unknown network and port; a port in use.
        let m = attach("u1", json!({"interfaceAttachment": {"net_id": nope}})).await;
        assert_eq!(
            m.assert_error(StatusCode::NOT_FOUND),
            format!("Network {nope} could not be found.")
        );
        let m = attach("u1", json!({"interfaceAttachment": {"port_id": nope}})).await;
        assert_eq!(
            m.assert_error(StatusCode::NOT_FOUND),
            format!("Port id {nope} could not be found.")
        );
        let r = s.get(&path(&other), &s.u1).await;
        let busy = r.json["interfaceAttachments"][0]["port_id"]
            .as_str()
            .unwrap()
            .to_string();
        let m = attach("u1", json!({"interfaceAttachment": {"port_id": busy}})).await;
        assert_eq!(
            m.assert_error(StatusCode::CONFLICT),
            format!("Port {busy} is still in use.")
        );
        // A fixed IP in use.
        let r = s.get(&path(&other), &s.u1).await;
        let used_ip = r.json["interfaceAttachments"][0]["fixed_ips"][0]["ip_address"]
            .as_str()
            .unwrap()
            .to_string();
        let m = attach(
            "u1",
            json!({"interfaceAttachment": {"net_id": cloud.net,
                "fixed_ips": [{"ip_address": used_ip}]}}),
        )
        .await;
        assert!(
            m.assert_error(StatusCode::CONFLICT)
                .contains("is already in use"),
            "{}",
            m.raw
        );
        // Show: a port that is not the server's.
        let m = s.get(&format!("{}/{busy}", path(&id)), &s.u1).await;
        assert_eq!(
            m.assert_error(StatusCode::NOT_FOUND),
            format!("Instance {id} does not have a port with id {busy}")
        );
        s.get(&format!("{}/{nope}", path(&id)), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // Detach: unknown, or not this server's.
        let m = s.delete(&format!("{}/{nope}", path(&id)), &s.u1).await;
        assert_eq!(
            m.assert_error(StatusCode::NOT_FOUND),
            format!("Port id {nope} could not be found.")
        );
        s.delete(&format!("{}/{busy}", path(&id)), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&format!("{}/{busy}", path(&id)), &s.reader)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // No network named: the project's one network, or 400 when there are several.
        let r = attach("u1", json!({"interfaceAttachment": {}})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["interfaceAttachment"]["net_id"], cloud.net);
        network(&s, &s.u1, "second", "10.3.0.0/24").await;
        let m = attach("u1", json!({"interfaceAttachment": {}})).await;
        assert_eq!(
            m.assert_error(StatusCode::BAD_REQUEST),
            "Multiple possible networks found, use a Network ID to be more specific."
        );
        // Quota: the network service's port quota is Nova's 403.
        let r = neutron(
            &s,
            Method::GET,
            &format!("/ports?project_id={}", s.p1),
            &s.admin,
            None,
        )
        .await;
        let used = r.json["ports"].as_array().unwrap().len();
        let r = neutron(
            &s,
            Method::PUT,
            &format!("/quotas/{}", s.p1),
            &s.admin,
            Some(json!({"quota": {"port": used}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let m = attach("u1", json!({"interfaceAttachment": {"net_id": cloud.net}})).await;
        assert_eq!(
            m.assert_error(StatusCode::FORBIDDEN),
            "Maximum number of ports exceeded"
        );
        let failed = actions(&s, &id).await;
        let last = failed.last().unwrap();
        assert_eq!(last.0, "attach_interface");
        assert_eq!(last.1[0].1.as_deref(), Some("Error"));
        // Locked: the owner is refused, an admin is not.
        let r = s
            .post(
                &format!("/servers/{id}/action"),
                &s.u1,
                json!({"lock": null}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let m = attach("u1", json!({"interfaceAttachment": {"net_id": cloud.net}})).await;
        assert_eq!(
            m.assert_error(StatusCode::CONFLICT),
            format!("Instance {id} is locked")
        );
        s.delete(&format!("{}/{nope}", path(&id)), &s.u1)
            .await
            .assert_error(StatusCode::CONFLICT);
        let r = s
            .post(
                &format!("/servers/{id}/action"),
                &s.u1,
                json!({"unlock": null}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        // A state Nova refuses (suspended).
        let r = s
            .post(
                &format!("/servers/{id}/action"),
                &s.u1,
                json!({"suspend": null}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.wait_status(&id, "SUSPENDED").await;
        let m = attach("u1", json!({"interfaceAttachment": {"net_id": cloud.net}})).await;
        assert_eq!(
            m.assert_error(StatusCode::CONFLICT),
            format!("Cannot 'attach_interface' instance {id} while it is in vm_state suspended")
        );
        let first = s.get(&path(&id), &s.u1).await.json["interfaceAttachments"][0]["port_id"]
            .as_str()
            .unwrap()
            .to_string();
        let m = s.delete(&format!("{}/{first}", path(&id)), &s.u1).await;
        assert!(m
            .assert_error(StatusCode::CONFLICT)
            .contains("'detach_interface'"));
        drop(cloud);
    }
}
