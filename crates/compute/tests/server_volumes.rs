//! Volumes on servers through the API, with the volume service in process: attach and detach
//! (`os-volume_attachments`) carried out by the fake hosts' agents and completed by the
//! lifecycle controller, the views per microversion, Nova's 400/404/409s; boot from volume
//! (`block_device_mapping_v2` with volume destinations), delete-on-termination, and a failing
//! mapping unwound without leftovers.

mod common;

use common::{Cloud, Resp, Stack};
use http::{Method, StatusCode};
use serde_json::{json, Value};

/// A request to the volume service (`/volume/v3/{project}{rest}`) at 3.44.
async fn cinder(
    s: &Stack,
    method: Method,
    project: &str,
    rest: &str,
    token: &str,
    body: Option<Value>,
) -> Resp {
    s.raw(
        method,
        &format!("/volume/v3/{project}{rest}"),
        Some(token),
        &[("openstack-api-version", "volume 3.44")],
        body,
    )
    .await
}

/// Polls `f` (with the store's changes as the clock) until it returns `Some`, or panics after
/// 30 s.
async fn until<T, F, Fut>(s: &Stack, what: &str, f: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: still not so after 30 s ({})",
            s.label()
        );
        let rev = s.db.store.current_revision().await.unwrap();
        s.db.store
            .watch(rev, std::time::Duration::from_millis(200))
            .await
            .unwrap();
    }
}

/// The volume as its owner sees it (`None`: gone).
async fn volume(s: &Stack, project: &str, token: &str, id: &str) -> Option<Value> {
    let r = cinder(
        s,
        Method::GET,
        project,
        &format!("/volumes/{id}"),
        token,
        None,
    )
    .await;
    match r.status {
        StatusCode::OK => Some(r.json["volume"].clone()),
        StatusCode::NOT_FOUND => None,
        other => panic!("volume {id}: {other} {}", r.raw),
    }
}

/// Waits for the volume's `status`; returns the volume.
async fn wait_volume(s: &Stack, project: &str, token: &str, id: &str, status: &str) -> Value {
    until(s, &format!("volume {id} {status}"), || async move {
        volume(s, project, token, id)
            .await
            .filter(|v| v["status"] == status)
    })
    .await
}

/// Waits until the volume is gone.
async fn wait_volume_gone(s: &Stack, project: &str, token: &str, id: &str) {
    until(s, &format!("volume {id} deleted"), || async move {
        volume(s, project, token, id).await.is_none().then_some(())
    })
    .await
}

/// A blank volume of `size` GiB, available.
async fn new_volume(s: &Stack, project: &str, token: &str, name: &str, size: i64) -> String {
    let r = cinder(
        s,
        Method::POST,
        project,
        "/volumes",
        token,
        Some(json!({"volume": {"name": name, "size": size}})),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
    let id = r.json["volume"]["id"].as_str().unwrap().to_string();
    wait_volume(s, project, token, &id, "available").await;
    id
}

/// The volume service's attachments of a volume (as the admin).
async fn cinder_attachments(s: &Stack, volume: &str) -> Vec<Value> {
    let r = cinder(
        s,
        Method::GET,
        &s.admin_project,
        &format!("/attachments/detail?all_tenants=1&volume_id={volume}"),
        &s.admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    r.json["attachments"].as_array().unwrap().clone()
}

/// The volumes of `project` (as the admin).
async fn volumes_of(s: &Stack, project: &str) -> Vec<Value> {
    let r = cinder(
        s,
        Method::GET,
        &s.admin_project,
        &format!("/volumes/detail?all_tenants=1&project_id={project}"),
        &s.admin,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    r.json["volumes"].as_array().unwrap().clone()
}

fn attachments_path(server: &str) -> String {
    format!("/servers/{server}/os-volume_attachments")
}

async fn attach(s: &Stack, server: &str, token: &str, mv: &str, body: Value) -> Resp {
    s.post_mv(&attachments_path(server), token, mv, body).await
}

/// The volumes the fake hypervisor has attached to the guest, with their devices.
fn guest_volumes(cloud: &Cloud, server: &str) -> std::collections::BTreeMap<String, String> {
    cloud
        .hosts
        .iter()
        .find(|h| h.guests().contains_key(server))
        .map(|h| h.volumes(server))
        .unwrap_or_default()
}

/// The server's actions (oldest first) with their events' names and results.
async fn actions(s: &Stack, id: &str) -> Vec<(String, Vec<(String, Option<String>)>)> {
    let mut out: Vec<_> = strata_compute::server_db::actions(&s.db.store, id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.action,
                a.events
                    .into_iter()
                    .map(|e| (e.event, e.result))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    out.reverse();
    out
}

/// Waits until the server's `action` has its one `event` finished with success.
async fn wait_action(s: &Stack, id: &str, action: &str, event: &str) {
    until(s, &format!("{action} finished"), || async move {
        actions(s, id)
            .await
            .iter()
            .any(|(a, ev)| a == action && ev == &[(event.to_string(), Some("Success".into()))])
            .then_some(())
    })
    .await
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

/// Waits until the server lists no attachment of `volume`.
async fn wait_detached(s: &Stack, server: &str, volume: &str) {
    until(s, &format!("{volume} gone from {server}"), || async move {
        let r = s.get(&attachments_path(server), &s.u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        (!r.json["volumeAttachments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["volumeId"] == volume))
        .then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_list_show_and_detach() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "vm1").await;
        let p1 = s.p1.clone();
        let v1 = new_volume(&s, &p1, &s.u1, "data1", 1).await;

        // Attach: 200 with the device after the root disk; the volume ends in-use with its
        // attachment naming the server; the guest has it.
        let r = attach(
            &s,
            &id,
            &s.u1,
            "2.1",
            json!({"volumeAttachment": {"volumeId": v1}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{} {}", s.label(), r.raw);
        let created = r.json["volumeAttachment"].clone();
        assert_eq!(
            created,
            json!({"id": v1, "serverId": id, "volumeId": v1, "device": "/dev/vdb"}),
            "{}",
            s.label()
        );
        let vol = wait_volume(&s, &p1, &s.u1, &v1, "in-use").await;
        assert_eq!(vol["attachments"][0]["server_id"], id.as_str());
        let atts = cinder_attachments(&s, &v1).await;
        assert_eq!(atts.len(), 1, "{atts:?}");
        assert_eq!(atts[0]["status"], "attached");
        assert_eq!(atts[0]["instance"], id.as_str());
        let cinder_att = atts[0]["id"].as_str().unwrap().to_string();
        assert_eq!(
            guest_volumes(&cloud, &id).get(&v1).map(String::as_str),
            Some("vdb")
        );
        wait_action(&s, &id, "attach_volume", "compute_attach_volume").await;

        // List and show, as the attach answered; microversion fields.
        let r = s.get(&attachments_path(&id), &s.u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["volumeAttachments"], json!([created.clone()]));
        let r = s
            .get(&format!("{}/{v1}", attachments_path(&id)), &s.u1)
            .await;
        assert_eq!(r.json["volumeAttachment"], created);
        let r = s
            .get_mv(&format!("{}/{v1}", attachments_path(&id)), &s.u1, "2.79")
            .await;
        let a = &r.json["volumeAttachment"];
        assert!(a["tag"].is_null() && a.as_object().unwrap().contains_key("tag"));
        assert_eq!(a["delete_on_termination"], false);
        assert_eq!(a["id"], v1.as_str());
        let r = s
            .get_mv(&format!("{}/{v1}", attachments_path(&id)), &s.u1, "2.89")
            .await;
        let a = &r.json["volumeAttachment"];
        assert!(a.get("id").is_none(), "{a}");
        assert_eq!(a["attachment_id"], cinder_att.as_str());
        assert!(uuid::Uuid::parse_str(a["bdm_uuid"].as_str().unwrap()).is_ok());
        let r = s.get_mv(&format!("/servers/{id}"), &s.u1, "2.79").await;
        assert_eq!(
            r.json["server"]["os-extended-volumes:volumes_attached"],
            json!([{"id": v1, "delete_on_termination": false}])
        );

        // A second volume, tagged and deleted with the server (2.79): the next device.
        let v2 = new_volume(&s, &p1, &s.u1, "data2", 1).await;
        let r = attach(
            &s,
            &id,
            &s.u1,
            "2.79",
            json!({"volumeAttachment": {"volumeId": v2, "device": null, "tag": "db",
                "delete_on_termination": true}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            r.json["volumeAttachment"],
            json!({"id": v2, "serverId": id, "volumeId": v2, "device": "/dev/vdc",
                "tag": "db", "delete_on_termination": true})
        );
        wait_volume(&s, &p1, &s.u1, &v2, "in-use").await;
        let r = s
            .get(&format!("{}?limit=1", attachments_path(&id)), &s.u1)
            .await;
        assert_eq!(r.json["volumeAttachments"].as_array().unwrap().len(), 1);
        assert_eq!(r.json["volumeAttachments"][0]["volumeId"], v1.as_str());
        let r = s
            .get(&format!("{}?offset=1", attachments_path(&id)), &s.u1)
            .await;
        assert_eq!(r.json["volumeAttachments"][0]["volumeId"], v2.as_str());
        let r = s
            .get_mv(&format!("{}?bogus=1", attachments_path(&id)), &s.u1, "2.75")
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);

        // 2.85: delete_on_termination may change, the device may not.
        let path = format!("{}/{v1}", attachments_path(&id));
        let r = s
            .put_mv(
                &path,
                &s.u1,
                "2.85",
                json!({"volumeAttachment": {"volumeId": v1, "delete_on_termination": true}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let r = s.get_mv(&path, &s.u1, "2.85").await;
        assert_eq!(r.json["volumeAttachment"]["delete_on_termination"], true);
        let r = s
            .put_mv(
                &path,
                &s.u1,
                "2.85",
                json!({"volumeAttachment": {"volumeId": v1, "device": "/dev/vdz",
                    "delete_on_termination": false}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .put_mv(
                &path,
                &s.u1,
                "2.85",
                json!({"volumeAttachment": {"volumeId": v1, "delete_on_termination": false}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        // A swap is the volume service's business: refused.
        let r = s
            .put_mv(
                &path,
                &s.admin,
                "2.85",
                json!({"volumeAttachment": {"volumeId": v2}}),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT);

        // Detach: 202; the guest loses it, the attachment goes, the volume is available.
        let r = s.call(Method::DELETE, &path, &s.u1, None, None).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        wait_volume(&s, &p1, &s.u1, &v1, "available").await;
        wait_detached(&s, &id, &v1).await;
        assert!(cinder_attachments(&s, &v1).await.is_empty());
        assert!(!guest_volumes(&cloud, &id).contains_key(&v1));
        wait_action(&s, &id, "detach_volume", "compute_detach_volume").await;
        // Attached again: the freed device is taken again.
        let r = attach(
            &s,
            &id,
            &s.u1,
            "2.1",
            json!({"volumeAttachment": {"volumeId": v1}}),
        )
        .await;
        assert_eq!(
            r.json["volumeAttachment"]["device"], "/dev/vdb",
            "{}",
            r.raw
        );
        wait_volume(&s, &p1, &s.u1, &v1, "in-use").await;

        // A stopped server takes volumes too, and keeps them over a stop and start.
        let r = s
            .post(
                &format!("/servers/{id}/action"),
                &s.u1,
                json!({"os-stop": null}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.wait_status(&id, "SHUTOFF").await;
        let v3 = new_volume(&s, &p1, &s.u1, "data3", 1).await;
        let r = attach(
            &s,
            &id,
            &s.u1,
            "2.1",
            json!({"volumeAttachment": {"volumeId": v3}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        wait_volume(&s, &p1, &s.u1, &v3, "in-use").await;
        let r = s
            .post(
                &format!("/servers/{id}/action"),
                &s.u1,
                json!({"os-start": null}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.wait_status(&id, "ACTIVE").await;
        assert_eq!(guest_volumes(&cloud, &id).len(), 3);

        // Deleting the server detaches everything; v2 goes with it, v1 and v3 stay.
        let r = s.delete(&format!("/servers/{id}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.wait_gone(&id).await;
        wait_volume_gone(&s, &p1, &s.u1, &v2).await;
        wait_volume(&s, &p1, &s.u1, &v1, "available").await;
        wait_volume(&s, &p1, &s.u1, &v3, "available").await;
        assert!(cinder_attachments(&s, &v1).await.is_empty());
        assert!(cinder_attachments(&s, &v3).await.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_and_detach_refusals() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "vm1").await;
        let other = boot_active(&s, &cloud, "vm2").await;
        let p1 = s.p1.clone();
        let v1 = new_volume(&s, &p1, &s.u1, "v1", 1).await;
        let body = json!({"volumeAttachment": {"volumeId": v1}});
        let missing = uuid::Uuid::new_v4().to_string();

        // Unknown server, unknown volume, another project's volume: 404.
        attach(&s, &missing, &s.u1, "2.1", body.clone())
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let m = attach(
            &s,
            &id,
            &s.u1,
            "2.1",
            json!({"volumeAttachment": {"volumeId": missing}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND)
        .to_string();
        assert_eq!(m, format!("Volume {missing} could not be found."));
        let p2 = s.p2.clone();
        let theirs = new_volume(&s, &p2, &s.u2, "theirs", 1).await;
        attach(
            &s,
            &id,
            &s.u1,
            "2.1",
            json!({"volumeAttachment": {"volumeId": theirs}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        // Another project's server: 404.
        attach(
            &s,
            &id,
            &s.u2,
            "2.1",
            json!({"volumeAttachment": {"volumeId": theirs}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);

        // Bodies Nova's schema refuses.
        for (mv, bad) in [
            ("2.1", json!({"volumeAttachment": {}})),
            (
                "2.1",
                json!({"volumeAttachment": {"volumeId": "not-a-uuid"}}),
            ),
            (
                "2.1",
                json!({"volumeAttachment": {"volumeId": v1, "device": "vdb"}}),
            ),
            (
                "2.48",
                json!({"volumeAttachment": {"volumeId": v1, "tag": "t"}}),
            ),
            (
                "2.78",
                json!({"volumeAttachment": {"volumeId": v1, "delete_on_termination": true}}),
            ),
            (
                "2.49",
                json!({"volumeAttachment": {"volumeId": v1, "tag": "a/b"}}),
            ),
            (
                "2.1",
                json!({"volumeAttachment": {"volumeId": v1, "extra": 1}}),
            ),
        ] {
            attach(&s, &id, &s.u1, mv, bad.clone())
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }

        // Attached here already; attached to another server; not available.
        let r = attach(&s, &id, &s.u1, "2.1", body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let m = attach(&s, &id, &s.u1, "2.1", body.clone())
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert_eq!(m, format!("Invalid volume: volume {v1} already attached"));
        wait_volume(&s, &p1, &s.u1, &v1, "in-use").await;
        let m = attach(&s, &other, &s.u1, "2.1", body.clone())
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert!(m.contains("is already attached to instances"), "{m}");
        let v2 = new_volume(&s, &p1, &s.u1, "v2", 1).await;
        let r = cinder(
            &s,
            Method::POST,
            &p1,
            "/attachments",
            &s.u1,
            Some(json!({"attachment": {"volume_uuid": v2, "instance_uuid": other}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let m = attach(
            &s,
            &id,
            &s.u1,
            "2.1",
            json!({"volumeAttachment": {"volumeId": v2}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST)
        .to_string();
        assert!(m.contains("status must be available"), "{m}");

        // Detach: an unknown volume, one not attached here: 404.
        let base = attachments_path(&id);
        s.delete(&format!("{base}/{missing}"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let m = s
            .delete(&format!("{base}/{v2}"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(m, format!("Instance {id} is not attached to volume {v2}"));
        s.get(&format!("{base}/{v2}"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // Locked: 409 for its members (the admin may).
        let r = s
            .post(
                &format!("/servers/{id}/action"),
                &s.u1,
                json!({"lock": null}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let v3 = new_volume(&s, &p1, &s.u1, "v3", 1).await;
        attach(
            &s,
            &id,
            &s.u1,
            "2.1",
            json!({"volumeAttachment": {"volumeId": v3}}),
        )
        .await
        .assert_error(StatusCode::CONFLICT);
        s.delete(&format!("{base}/{v1}"), &s.u1)
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

        // A suspended server takes no volumes (Nova's `check_instance_state`): 409.
        let r = s
            .post(
                &format!("/servers/{id}/action"),
                &s.u1,
                json!({"suspend": null}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.wait_status(&id, "SUSPENDED").await;
        let m = attach(
            &s,
            &id,
            &s.u1,
            "2.1",
            json!({"volumeAttachment": {"volumeId": v3}}),
        )
        .await
        .assert_error(StatusCode::CONFLICT)
        .to_string();
        assert_eq!(
            m,
            format!("Cannot 'attach_volume' instance {id} while it is in vm_state suspended")
        );
        s.delete(&format!("{base}/{v1}"), &s.u1)
            .await
            .assert_error(StatusCode::CONFLICT);
        // Nothing was reserved by the refusals.
        wait_volume(&s, &p1, &s.u1, &v3, "available").await;
        assert!(cinder_attachments(&s, &v3).await.is_empty());
    }
}

/// Boots `name` from the mappings `bdms` (no image), as u1.
async fn boot_from(s: &Stack, cloud: &Cloud, name: &str, bdms: Value) -> Resp {
    s.post(
        "/servers",
        &s.u1,
        json!({"server": {"name": name, "flavorRef": "1",
            "networks": [{"uuid": cloud.net}], "block_device_mapping_v2": bdms}}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boot_from_volume_and_delete_on_termination() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let p1 = s.p1.clone();

        // An image copied into a new volume that goes with the server.
        let r = boot_from(
            &s,
            &cloud,
            "bfv1",
            json!([{"source_type": "image", "uuid": cloud.image, "destination_type": "volume",
                "boot_index": 0, "volume_size": 1, "delete_on_termination": true}]),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{} {}", s.label(), r.raw);
        let id = r.json["server"]["id"].as_str().unwrap().to_string();
        let r = s.wait_status(&id, "ACTIVE").await;
        let v = &r.json["server"];
        assert_eq!(v["image"], "", "{}", s.label());
        let root = v["os-extended-volumes:volumes_attached"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            v["os-extended-volumes:volumes_attached"][0]["delete_on_termination"],
            true
        );
        let vol = wait_volume(&s, &p1, &s.u1, &root, "in-use").await;
        assert_eq!(vol["bootable"], "true");
        assert_eq!(vol["attachments"][0]["server_id"], id.as_str());
        let r = s.get(&attachments_path(&id), &s.u1).await;
        assert_eq!(r.json["volumeAttachments"][0]["device"], "/dev/vda");
        assert_eq!(
            guest_volumes(&cloud, &id).get(&root).map(String::as_str),
            Some("vda")
        );
        // The root disk is not claimed on the host.
        let allocs = s
            .svc
            .placement()
            .unwrap()
            .consumer_allocations(&id)
            .await
            .unwrap();
        assert!(!allocs.is_empty());
        assert!(
            allocs.values().all(|r| !r.contains_key("DISK_GB")),
            "{allocs:?}"
        );
        // The root volume stays.
        let m = s
            .delete(&format!("{}/{root}", attachments_path(&id)), &s.u1)
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert_eq!(m, "Cannot detach a root device volume");
        let r = s.delete(&format!("/servers/{id}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        s.wait_gone(&id).await;
        wait_volume_gone(&s, &p1, &s.u1, &root).await;

        // Kept by default (as Nova), with a blank second disk that goes with the server.
        let r = boot_from(
            &s,
            &cloud,
            "bfv2",
            json!([{"source_type": "image", "uuid": cloud.image, "destination_type": "volume",
                "boot_index": "0", "volume_size": 1},
                {"source_type": "blank", "destination_type": "volume", "volume_size": 1,
                 "delete_on_termination": true}]),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let id = r.json["server"]["id"].as_str().unwrap().to_string();
        s.wait_status(&id, "ACTIVE").await;
        let r = s.get_mv(&attachments_path(&id), &s.u1, "2.79").await;
        let list = r.json["volumeAttachments"].as_array().unwrap().clone();
        assert_eq!(list.len(), 2, "{}", r.raw);
        assert_eq!(list[0]["device"], "/dev/vda");
        assert_eq!(list[0]["delete_on_termination"], false);
        assert_eq!(list[1]["device"], "/dev/vdb");
        assert_eq!(list[1]["delete_on_termination"], true);
        let (root, blank) = (
            list[0]["volumeId"].as_str().unwrap().to_string(),
            list[1]["volumeId"].as_str().unwrap().to_string(),
        );
        let b = wait_volume(&s, &p1, &s.u1, &blank, "in-use").await;
        assert_eq!(b["name"], format!("{id}-blank-vol"));
        assert_eq!(guest_volumes(&cloud, &id).len(), 2);
        let r = s.delete(&format!("/servers/{id}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        s.wait_gone(&id).await;
        wait_volume_gone(&s, &p1, &s.u1, &blank).await;
        wait_volume(&s, &p1, &s.u1, &root, "available").await;

        // That kept volume boots a server of its own.
        let r = boot_from(
            &s,
            &cloud,
            "bfv3",
            json!([{"source_type": "volume", "uuid": root, "destination_type": "volume",
                "boot_index": 0}]),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let id = r.json["server"]["id"].as_str().unwrap().to_string();
        s.wait_status(&id, "ACTIVE").await;
        wait_volume(&s, &p1, &s.u1, &root, "in-use").await;
        let r = s.delete(&format!("/servers/{id}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        s.wait_gone(&id).await;
        wait_volume(&s, &p1, &s.u1, &root, "available").await;
        assert!(cinder_attachments(&s, &root).await.is_empty());

        // An image-booted server with a blank volume beside its local root.
        let id = s
            .boot(
                &cloud,
                &s.u1,
                "img-and-blank",
                json!({"block_device_mapping_v2": [
                    {"source_type": "image", "uuid": cloud.image, "destination_type": "local",
                     "boot_index": 0},
                    {"source_type": "blank", "destination_type": "volume", "volume_size": 1,
                     "delete_on_termination": true}]}),
            )
            .await;
        let r = s.wait_status(&id, "ACTIVE").await;
        assert_eq!(r.json["server"]["image"]["id"], cloud.image.as_str());
        let r = s.get(&attachments_path(&id), &s.u1).await;
        assert_eq!(
            r.json["volumeAttachments"][0]["device"], "/dev/vdb",
            "{}",
            r.raw
        );
        let blank = r.json["volumeAttachments"][0]["volumeId"]
            .as_str()
            .unwrap()
            .to_string();
        wait_volume(&s, &p1, &s.u1, &blank, "in-use").await;
        let r = s.delete(&format!("/servers/{id}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        s.wait_gone(&id).await;
        wait_volume_gone(&s, &p1, &s.u1, &blank).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_and_failing_mappings() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let p1 = s.p1.clone();
        let missing = uuid::Uuid::new_v4().to_string();

        // Refused at the API, as Nova's schema and `_validate_bdm` refuse them.
        for (bdms, want) in [
            (
                json!([{"source_type": "volume", "uuid": missing, "destination_type": "volume",
                    "boot_index": 0}]),
                format!("Block Device Mapping is Invalid: failed to get volume {missing}."),
            ),
            (
                json!([{"source_type": "image", "uuid": cloud.image,
                    "destination_type": "volume", "boot_index": 0}]),
                "Images with destination_type 'volume' need to have a non-zero size specified"
                    .to_string(),
            ),
            (
                json!([{"source_type": "blank", "uuid": missing, "destination_type": "volume",
                    "boot_index": 0, "volume_size": 1}]),
                "Block Device Mapping is Invalid: Invalid device UUID.".to_string(),
            ),
            (
                json!([{"source_type": "image", "uuid": cloud.image,
                    "destination_type": "volume", "boot_index": 1, "volume_size": 1}]),
                "Block Device Mapping is Invalid: Boot sequence for the instance and \
                 image/block device mapping combination is not valid."
                    .to_string(),
            ),
            (
                json!([{"source_type": "image", "uuid": cloud.image,
                    "destination_type": "local", "boot_index": 0}]),
                "Block Device Mapping is Invalid: Mapping image to local is not supported."
                    .to_string(),
            ),
            (
                json!([{"source_type": "snapshot", "uuid": missing,
                    "destination_type": "volume", "boot_index": 0}]),
                format!("Block Device Mapping is Invalid: failed to get snapshot {missing}."),
            ),
        ] {
            let r = boot_from(&s, &cloud, "bad", bdms.clone()).await;
            let m = r.assert_error(StatusCode::BAD_REQUEST).to_string();
            assert_eq!(m, want, "{} {bdms}", s.label());
        }
        let r = boot_from(
            &s,
            &cloud,
            "bad",
            json!([{"source_type": "nope", "uuid": missing, "boot_index": 0}]),
        )
        .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let vol = new_volume(&s, &p1, &s.u1, "multi", 1).await;
        let r = s
            .post(
                "/servers",
                &s.u1,
                json!({"server": {"name": "m", "flavorRef": "1", "min_count": 2,
                    "networks": [{"uuid": cloud.net}], "block_device_mapping_v2": [
                    {"source_type": "volume", "uuid": vol, "destination_type": "volume",
                     "boot_index": 0}]}}),
            )
            .await;
        let m = r.assert_error(StatusCode::BAD_REQUEST).to_string();
        assert_eq!(m, "Cannot attach one or more volumes to multiple instances");
        let r = s
            .post(
                "/servers",
                &s.u1,
                json!({"server": {"name": "m", "flavorRef": "1",
                    "networks": [{"uuid": cloud.net}]}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "Missing imageRef attribute"
        );
        assert!(volumes_of(&s, &p1).await.len() == 1);

        // Failing in the build: the volume service's quota lets the root volume be made but
        // not the second; the build fails with a fault and leaves nothing behind.
        let r = cinder(
            &s,
            Method::PUT,
            &s.admin_project,
            &format!("/os-quota-sets/{p1}"),
            &s.admin,
            Some(json!({"quota_set": {"gigabytes": 2}})),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let r = boot_from(
            &s,
            &cloud,
            "fails",
            json!([{"source_type": "image", "uuid": cloud.image, "destination_type": "volume",
                "boot_index": 0, "volume_size": 1},
                {"source_type": "blank", "destination_type": "volume", "volume_size": 1}]),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let id = r.json["server"]["id"].as_str().unwrap().to_string();
        let r = s.wait_status(&id, "ERROR").await;
        let fault = &r.json["server"]["fault"];
        assert_eq!(fault["code"], 500, "{}", r.raw);
        assert!(
            fault["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("Build of instance {id} aborted: ")),
            "{fault}"
        );
        assert!(
            fault["details"].as_str().unwrap().contains("HTTP 413"),
            "{fault}"
        );
        // Nothing left: only the volume made before, no attachments, ports or claims.
        let (st, p1r, volr, idr) = (&s, p1.as_str(), vol.as_str(), id.as_str());
        until(st, "the failed build's volumes deleted", || async move {
            let v = volumes_of(st, p1r).await;
            (v.len() == 1 && v[0]["id"] == volr).then_some(())
        })
        .await;
        until(
            st,
            "the failed build's ports and claims released",
            || async move {
                let r = st
                    .raw(
                        Method::GET,
                        &format!("/network/v2.0/ports?device_id={idr}"),
                        Some(&st.admin),
                        &[],
                        None,
                    )
                    .await;
                let allocs = st
                    .svc
                    .placement()
                    .unwrap()
                    .consumer_allocations(idr)
                    .await
                    .unwrap();
                (r.json["ports"].as_array().unwrap().is_empty() && allocs.is_empty()).then_some(())
            },
        )
        .await;
        // The server's mappings go with the cleanup too.
        until(st, "the failed build's mappings removed", || async move {
            let r = st.get(&attachments_path(idr), &st.u1).await;
            (r.json["volumeAttachments"] == json!([])).then_some(())
        })
        .await;
        let r = cinder(
            &s,
            Method::GET,
            &s.admin_project,
            &format!("/attachments?all_tenants=1&instance_id={id}"),
            &s.admin,
            None,
        )
        .await;
        assert_eq!(r.json["attachments"], json!([]), "{}", r.raw);
        let r = s.delete(&format!("/servers/{id}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        s.wait_gone(&id).await;
    }
}
