//! `createImage` (server snapshots into the image service) through the API, carried out by
//! in-process node agents on fake hosts: the image is created `queued` before the 202, the
//! host's agent takes the snapshot and uploads it through the agent contract, the image goes
//! active with the snapshot's bytes and the server's task comes back to none; Nova's
//! 400/403/404/409s; failed snapshots and deleted servers take their image with them.

mod common;

use common::{Cloud, Resp, Stack};
use http::{Method, Request, StatusCode};
use md5::{Digest, Md5};
use serde_json::{json, Value};
use tower::ServiceExt;

async fn act(s: &Stack, id: &str, token: &str, body: Value) -> Resp {
    s.post(&format!("/servers/{id}/action"), token, body).await
}

async fn act_mv(s: &Stack, id: &str, token: &str, mv: &str, body: Value) -> Resp {
    s.post_mv(&format!("/servers/{id}/action"), token, mv, body)
        .await
}

/// Waits for `status` with no task left.
async fn settle(s: &Stack, id: &str, status: &str) -> Resp {
    s.wait_server(id, status, |r| {
        r.json["server"]["status"] == status && r.json["server"]["OS-EXT-STS:task_state"].is_null()
    })
    .await
}

async fn boot_active(s: &Stack, cloud: &Cloud, name: &str) -> String {
    let id = s.boot(cloud, &s.u1, name, json!({})).await;
    settle(s, &id, "ACTIVE").await;
    id
}

fn task_state(r: &Resp) -> Value {
    r.json["server"]["OS-EXT-STS:task_state"].clone()
}

/// The image as Glance shows it to `token`.
async fn image(s: &Stack, id: &str, token: &str) -> Resp {
    s.raw(
        Method::GET,
        &format!("/image/v2/images/{id}"),
        Some(token),
        &[],
        None,
    )
    .await
}

/// Polls the image (as admin) until `pred` holds, or panics after 30 s.
async fn wait_image(s: &Stack, id: &str, what: &str, pred: impl Fn(&Resp) -> bool) -> Resp {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let r = image(s, id, &s.admin).await;
        if pred(&r) {
            return r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "image {id} never became {what}: {}",
            r.raw
        );
        let rev = s.db.store.current_revision().await.unwrap();
        s.db.store
            .watch(rev, std::time::Duration::from_millis(200))
            .await
            .unwrap();
    }
}

fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The server's `createImage` actions, oldest first: each one's events as
/// `(event, result, traceback)`.
async fn snapshot_events(
    s: &Stack,
    id: &str,
) -> Vec<Vec<(String, Option<String>, Option<String>)>> {
    let mut out: Vec<_> = strata_compute::server_db::actions(&s.db.store, id)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.action == "createImage")
        .map(|a| {
            a.events
                .into_iter()
                .map(|e| (e.event, e.result, e.traceback))
                .collect::<Vec<_>>()
        })
        .collect();
    out.reverse();
    out
}

fn hold(cloud: &Cloud, held: bool) {
    for h in &cloud.hosts {
        h.hold_snapshots(held);
    }
}

fn taken(cloud: &Cloud, id: &str) -> u64 {
    cloud.hosts.iter().map(|h| h.snapshots_taken(id)).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_server_is_snapshotted_into_an_image() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "vm1").await;
        // The agent holds the snapshot: the server is seen in its task.
        hold(&cloud, true);
        let r = act(
            &s,
            &id,
            &s.u1,
            json!({"createImage": {"name": "snap-1", "metadata": {"purpose": "backup"}}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", s.label(), r.raw);
        assert!(r.raw.is_empty(), "{}", r.raw);
        let location = r.headers["location"].to_str().unwrap().to_string();
        let image_id = location
            .strip_prefix("http://test/image/v2/images/")
            .unwrap_or_else(|| panic!("Location {location}"))
            .to_string();
        let v = s.get(&format!("/servers/{id}"), &s.u1).await;
        assert_eq!(v.json["server"]["status"], "ACTIVE", "{}", v.raw);
        let v = s
            .get_mv(&format!("/servers/{id}"), &s.admin, "latest")
            .await;
        assert_eq!(task_state(&v), "image_snapshot", "{}", v.raw);
        // The image exists, queued, owned by the caller's project, before any data.
        let img = image(&s, &image_id, &s.u1).await;
        assert_eq!(img.status, StatusCode::OK, "{}", img.raw);
        let i = &img.json;
        assert_eq!(i["status"], "queued", "{}", img.raw);
        assert_eq!(i["name"], "snap-1");
        assert_eq!(i["owner"], s.p1.as_str());
        assert_eq!(i["visibility"], "private");
        assert_eq!(
            (i["disk_format"].as_str(), i["container_format"].as_str()),
            (Some("raw"), Some("bare"))
        );
        assert_eq!(i["image_type"], "snapshot");
        assert_eq!(i["instance_uuid"], id.as_str());
        assert_eq!(i["base_image_ref"], cloud.image.as_str());
        assert_eq!(i["user_id"], s.u1_id.as_str());
        assert_eq!(i["purpose"], "backup");
        // Another snapshot, or another task, while this one runs: Nova's 409s.
        let m = act(&s, &id, &s.u1, json!({"createImage": {"name": "snap-2"}}))
            .await
            .assert_error(StatusCode::CONFLICT)
            .to_string();
        assert_eq!(
            m,
            format!("Cannot 'createImage' instance {id} while it is in task_state image_snapshot")
        );
        act(&s, &id, &s.u1, json!({"os-stop": null}))
            .await
            .assert_error(StatusCode::CONFLICT);
        // The refused snapshot left no image behind.
        let r = s
            .raw(
                Method::GET,
                "/image/v2/images?name=snap-2",
                Some(&s.u1),
                &[],
                None,
            )
            .await;
        assert_eq!(r.json["images"], json!([]), "{}", r.raw);

        // Released: the guest's disk becomes the image's data, the task goes.
        hold(&cloud, false);
        let v = settle(&s, &id, "ACTIVE").await;
        assert_eq!(v.json["server"]["OS-EXT-STS:power_state"], 1);
        let data = strata_agent::fake_snapshot_data(&id, Some(&cloud.image));
        let img = wait_image(&s, &image_id, "active", |r| r.json["status"] == "active").await;
        assert_eq!(img.json["size"], data.len() as u64, "{}", img.raw);
        assert_eq!(img.json["checksum"], md5_hex(&data), "{}", img.raw);
        let r = s
            .raw(
                Method::GET,
                &format!("/image/v2/images/{image_id}/file"),
                Some(&s.u1),
                &[],
                None,
            )
            .await;
        assert_eq!(r.raw.as_bytes(), data.as_slice());
        assert_eq!(taken(&cloud, &id), 1);
        // The guest kept running through it.
        assert_eq!(
            cloud.hosts[0].guests()[&id],
            (strata_agent_api::Power::Running, 1)
        );
        // One createImage action, its event finished successfully.
        let ev = snapshot_events(&s, &id).await;
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(ev[0].len(), 1, "{ev:?}");
        assert_eq!(ev[0][0].0, "compute_snapshot_instance");
        assert_eq!(ev[0][0].1.as_deref(), Some("Success"), "{ev:?}");
        let r = s
            .get_mv(&format!("/servers/{id}/os-instance-actions"), &s.u1, "2.1")
            .await;
        assert!(
            r.json["instanceActions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["action"] == "createImage"),
            "{}",
            r.raw
        );
        // Nova's Tempest pattern: the request's metadata overrides what the snapshot sets,
        // and the image is the caller's to delete.
        let r = act(
            &s,
            &id,
            &s.u1b,
            json!({"createImage": {"name": "test-image", "metadata": {"image_type": "test"}}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let second = r.headers["location"]
            .to_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        let img = wait_image(&s, &second, "active", |r| r.json["status"] == "active").await;
        assert_eq!(img.json["image_type"], "test");
        assert_eq!(img.json["user_id"], s.u1b_id.as_str());
        settle(&s, &id, "ACTIVE").await;
        let r = s
            .raw(
                Method::DELETE,
                &format!("/image/v2/images/{second}"),
                Some(&s.u1b),
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopped_and_paused_servers_are_snapshotted_and_2_45_answers_the_image_id() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "vm1").await;
        act(&s, &id, &s.u1, json!({"os-stop": null})).await;
        settle(&s, &id, "SHUTOFF").await;
        // 2.45: the id in the body, no Location; a multibyte name.
        let name = "\u{20a1}-snapshot-\u{00e9}t\u{00e9}";
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.45",
            json!({"createImage": {"name": name}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", s.label(), r.raw);
        assert!(r.headers.get("location").is_none(), "{:?}", r.headers);
        let image_id = r.json["image_id"].as_str().unwrap().to_string();
        assert_eq!(r.json.as_object().unwrap().len(), 1, "{}", r.raw);
        let img = wait_image(&s, &image_id, "active", |r| r.json["status"] == "active").await;
        assert_eq!(img.json["name"], name);
        let v = settle(&s, &id, "SHUTOFF").await;
        assert_eq!(v.json["server"]["OS-EXT-STS:vm_state"], "stopped");
        assert_eq!(
            cloud.hosts[0].guests()[&id].0,
            strata_agent_api::Power::Shutdown
        );
        // Paused.
        act(&s, &id, &s.u1, json!({"os-start": null})).await;
        settle(&s, &id, "ACTIVE").await;
        act(&s, &id, &s.u1, json!({"pause": null})).await;
        settle(&s, &id, "PAUSED").await;
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.96",
            json!({"createImage": {"name": "p"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let image_id = r.json["image_id"].as_str().unwrap().to_string();
        wait_image(&s, &image_id, "active", |r| r.json["status"] == "active").await;
        settle(&s, &id, "PAUSED").await;
        assert_eq!(taken(&cloud, &id), 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_image_refusals_follow_nova() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "vm1").await;
        let images_before = s
            .raw(Method::GET, "/image/v2/images", Some(&s.admin), &[], None)
            .await
            .json["images"]
            .as_array()
            .unwrap()
            .len();
        // Malformed bodies: 400 before anything else.
        for body in [
            json!({"createImage": {}}),
            json!({"createImage": {"metadata": {}}}),
            json!({"createImage": {"name": "x", "extra": 1}}),
            json!({"createImage": {"name": "x", "metadata": "no"}}),
            json!({"createImage": {"name": "x", "metadata": {"k": 1}}}),
            json!({"createImage": {"name": "x", "metadata": {"": ""}}}),
            json!({"createImage": {"name": "x", "metadata": {"a".repeat(256): "b"}}}),
            json!({"createImage": {"name": ""}}),
            json!({"createImage": {"name": " padded"}}),
            json!({"createImage": {"name": "a".repeat(256)}}),
            json!({"createImage": {"name": 5}}),
            json!({"createImage": null}),
            json!({"createImage": "snap"}),
        ] {
            act(&s, &id, &s.u1, body.clone())
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        // Someone else's server is not found; a reader may not.
        act(&s, &id, &s.u2, json!({"createImage": {"name": "x"}}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        act(
            &s,
            "00000000-0000-0000-0000-000000000000",
            &s.u1,
            json!({"createImage": {"name": "x"}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        act(&s, &id, &s.reader, json!({"createImage": {"name": "x"}}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // Image metadata counts against metadata_items (128) up to 2.38 only.
        let many: serde_json::Map<String, Value> =
            (0..129).map(|i| (format!("k{i}"), json!("v"))).collect();
        let m = act(
            &s,
            &id,
            &s.u1,
            json!({"createImage": {"name": "x", "metadata": many.clone()}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN)
        .to_string();
        assert_eq!(m, "Image metadata limit exceeded");
        act_mv(
            &s,
            &id,
            &s.u1,
            "2.38",
            json!({"createImage": {"name": "x", "metadata": many.clone()}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        let after = s
            .raw(Method::GET, "/image/v2/images", Some(&s.admin), &[], None)
            .await
            .json["images"]
            .as_array()
            .unwrap()
            .len();
        assert_eq!(after, images_before, "a refused createImage made no image");
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.39",
            json!({"createImage": {"name": "many", "metadata": many}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        // Up to 2.44 the image is named by the Location.
        let location = r.headers["location"].to_str().unwrap();
        let img = location.rsplit('/').next().unwrap().to_string();
        wait_image(&s, &img, "active", |r| r.json["status"] == "active").await;
        assert_eq!(image(&s, &img, &s.u1).await.json["k128"], "v");
        settle(&s, &id, "ACTIVE").await;
        // Locked: Nova does not check the lock for snapshots (a lock keeps a server from
        // changing; a snapshot does not change it).
        act(&s, &id, &s.admin, json!({"lock": null})).await;
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.45",
            json!({"createImage": {"name": "locked"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        settle(&s, &id, "ACTIVE").await;
        act(&s, &id, &s.admin, json!({"unlock": null})).await;
        // A server in ERROR (its only host failed the build): 409 on the vm_state.
        cloud.hosts[0].fail_next_spawns(1);
        let bad = s.boot(&cloud, &s.u1, "bad", json!({})).await;
        settle(&s, &bad, "ERROR").await;
        let m = act(&s, &bad, &s.u1, json!({"createImage": {"name": "x"}}))
            .await
            .assert_error(StatusCode::CONFLICT)
            .to_string();
        assert_eq!(
            m,
            format!("Cannot 'createImage' instance {bad} while it is in vm_state error")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_snapshot_deletes_its_image_and_records_the_error() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "vm1").await;
        cloud.hosts[0].fail_next_snapshots(1);
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.45",
            json!({"createImage": {"name": "doomed"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", s.label(), r.raw);
        let image_id = r.json["image_id"].as_str().unwrap().to_string();
        wait_image(&s, &image_id, "deleted", |r| {
            r.status == StatusCode::NOT_FOUND
        })
        .await;
        let v = settle(&s, &id, "ACTIVE").await;
        assert!(v.json["server"].get("fault").is_none(), "{}", v.raw);
        let ev = snapshot_events(&s, &id).await;
        assert_eq!(ev.len(), 1, "{ev:?}");
        let (event, result, traceback) = &ev[0][0];
        assert_eq!(event, "compute_snapshot_instance");
        assert_eq!(result.as_deref(), Some("Error"), "{ev:?}");
        assert!(
            traceback
                .as_deref()
                .unwrap_or_default()
                .contains("injected failure"),
            "{ev:?}"
        );
        let actions = strata_compute::server_db::actions(&s.db.store, &id)
            .await
            .unwrap();
        assert_eq!(actions[0].action, "createImage");
        assert_eq!(actions[0].message.as_deref(), Some("Error"));
        // The knob is spent: the next snapshot works.
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.45",
            json!({"createImage": {"name": "fine"}}),
        )
        .await;
        let image_id = r.json["image_id"].as_str().unwrap().to_string();
        wait_image(&s, &image_id, "active", |r| r.json["status"] == "active").await;
        settle(&s, &id, "ACTIVE").await;
        let ev = snapshot_events(&s, &id).await;
        assert_eq!(ev[1][0].1.as_deref(), Some("Success"), "{ev:?}");
    }
}

/// `PUT /agent/v1/instances/{id}/snapshot/{image}` with a body whose chunks the test sends.
fn streamed_upload(
    s: &Stack,
    id: &str,
    image_id: &str,
) -> (
    tokio::sync::mpsc::Sender<Vec<u8>>,
    tokio::task::JoinHandle<StatusCode>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|chunk| (Ok::<_, std::io::Error>(bytes::Bytes::from(chunk)), rx))
    });
    let req = Request::builder()
        .method(Method::PUT)
        .uri(format!("/agent/v1/instances/{id}/snapshot/{image_id}"))
        .header("x-auth-token", &s.admin)
        .header("content-type", "application/octet-stream")
        .body(axum::body::Body::from_stream(stream))
        .unwrap();
    let app = s.app.clone();
    let task = tokio::spawn(async move { app.oneshot(req).await.unwrap().status() });
    (tx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_moves_the_server_to_image_uploading_and_is_taken_once() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "vm1").await;
        hold(&cloud, true);
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.45",
            json!({"createImage": {"name": "snap"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", s.label(), r.raw);
        let image_id = r.json["image_id"].as_str().unwrap().to_string();
        // An upload for an image the server does not ask for, or of another type: refused,
        // nothing changes.
        let other = "11111111-1111-1111-1111-111111111111";
        let r = s
            .raw(
                Method::PUT,
                &format!("/agent/v1/instances/{id}/snapshot/{other}"),
                Some(&s.admin),
                &[("content-type", "application/octet-stream")],
                Some(json!("data")),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT);
        let r = s
            .raw(
                Method::PUT,
                &format!("/agent/v1/instances/{id}/snapshot/{image_id}"),
                Some(&s.admin),
                &[("content-type", "text/plain")],
                Some(json!("data")),
            )
            .await;
        r.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // Members of projects are not agents.
        let r = s
            .raw(
                Method::PUT,
                &format!("/agent/v1/instances/{id}/snapshot/{image_id}"),
                Some(&s.u1),
                &[("content-type", "application/octet-stream")],
                Some(json!("data")),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let v = s
            .get_mv(&format!("/servers/{id}"), &s.admin, "latest")
            .await;
        assert_eq!(task_state(&v), "image_snapshot", "{}", v.raw);

        // The data arrives in pieces: the server is uploading while it streams.
        let (tx, upload) = streamed_upload(&s, &id, &image_id);
        tx.send(vec![1u8; 3000]).await.unwrap();
        s.wait_server(&id, "image_uploading", |r| {
            task_state(r) == "image_uploading"
        })
        .await;
        wait_image(&s, &image_id, "saving", |r| r.json["status"] == "saving").await;
        tx.send(vec![2u8; 1000]).await.unwrap();
        drop(tx);
        assert_eq!(upload.await.unwrap(), StatusCode::NO_CONTENT);
        settle(&s, &id, "ACTIVE").await;
        let mut data = vec![1u8; 3000];
        data.extend(vec![2u8; 1000]);
        let img = image(&s, &image_id, &s.u1).await;
        assert_eq!(img.json["status"], "active", "{}", img.raw);
        assert_eq!(img.json["checksum"], md5_hex(&data));
        assert_eq!(
            snapshot_events(&s, &id).await[0][0].1.as_deref(),
            Some("Success")
        );
        // Done: the same upload again (a restarted agent's) is refused and changes nothing.
        let r = s
            .raw(
                Method::PUT,
                &format!("/agent/v1/instances/{id}/snapshot/{image_id}"),
                Some(&s.admin),
                &[("content-type", "application/octet-stream")],
                Some(json!("other data")),
            )
            .await;
        let m = r.assert_error(StatusCode::CONFLICT).to_string();
        assert!(m.contains("no snapshot pending"), "{m}");
        let r = s
            .raw(
                Method::PUT,
                &format!("/agent/v1/instances/{id}/snapshot/{image_id}/fault"),
                Some(&s.admin),
                &[],
                Some(json!({"message": "late", "details": "", "retryable": false})),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT);
        // The held agent goes on: its snapshot is taken once and its upload refused.
        hold(&cloud, false);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while taken(&cloud, &id) == 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the agent took no snapshot"
            );
            tokio::task::yield_now().await;
        }
        let img = image(&s, &image_id, &s.u1).await;
        assert_eq!(img.json["checksum"], md5_hex(&data), "{}", img.raw);
        let v = settle(&s, &id, "ACTIVE").await;
        assert!(task_state(&v).is_null());
        assert_eq!(taken(&cloud, &id), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_server_during_its_snapshot_deletes_the_image() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "vm1").await;
        hold(&cloud, true);
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.45",
            json!({"createImage": {"name": "snap"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", s.label(), r.raw);
        let image_id = r.json["image_id"].as_str().unwrap().to_string();
        assert_eq!(
            s.delete(&format!("/servers/{id}"), &s.u1).await.status,
            StatusCode::NO_CONTENT
        );
        s.wait_gone(&id).await;
        wait_image(&s, &image_id, "deleted", |r| {
            r.status == StatusCode::NOT_FOUND
        })
        .await;
        let ev = snapshot_events(&s, &id).await;
        assert_eq!(ev[0][0].1.as_deref(), Some("Error"), "{ev:?}");
        hold(&cloud, false);
        // The agent's late attempt finds nothing to do.
        let r = s
            .raw(
                Method::PUT,
                &format!("/agent/v1/instances/{id}/snapshot/{image_id}"),
                Some(&s.admin),
                &[("content-type", "application/octet-stream")],
                Some(json!("data")),
            )
            .await;
        r.assert_error(StatusCode::CONFLICT);
        assert!(cloud.hosts[0].guests().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_image_proxy_shows_and_deletes_snapshots_up_to_2_35() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "vm1").await;
        hold(&cloud, true);
        let r = act(
            &s,
            &id,
            &s.u1,
            json!({"createImage": {"name": "snap", "metadata": {"image_type": "test"}}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", s.label(), r.raw);
        let image_id = r.headers["location"]
            .to_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        // Queued: SAVING in Nova's words.
        let v = s.get(&format!("/images/{image_id}"), &s.u1).await;
        assert_eq!(v.status, StatusCode::OK, "{}", v.raw);
        assert_eq!(v.json["image"]["status"], "SAVING", "{}", v.raw);
        assert_eq!(v.json["image"]["progress"], 25);
        hold(&cloud, false);
        settle(&s, &id, "ACTIVE").await;
        let v = s.get(&format!("/images/{image_id}"), &s.u1).await;
        let i = &v.json["image"];
        assert_eq!(i["id"], image_id.as_str(), "{}", v.raw);
        assert_eq!(i["name"], "snap");
        assert_eq!(i["status"], "ACTIVE");
        assert_eq!(i["progress"], 100);
        assert_eq!(i["minRam"], 0);
        assert_eq!(i["minDisk"], 0);
        assert_eq!(
            i["OS-EXT-IMG-SIZE:size"],
            strata_agent::FAKE_SNAPSHOT_BYTES as u64
        );
        assert_eq!(i["metadata"]["image_type"], "test");
        assert_eq!(i["metadata"]["instance_uuid"], id.as_str());
        assert!(i["metadata"].get("disk_format").is_none(), "{}", v.raw);
        assert_eq!(i["server"]["id"], id.as_str());
        let rels: Vec<&str> = i["links"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["rel"].as_str().unwrap())
            .collect();
        assert_eq!(rels, ["self", "bookmark", "alternate"]);
        // Gone from 2.36; hidden from other projects.
        s.get_mv(&format!("/images/{image_id}"), &s.u1, "2.36")
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get(&format!("/images/{image_id}"), &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&format!("/images/{image_id}"), &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // Deleted through the proxy.
        let r = s.delete(&format!("/images/{image_id}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.get(&format!("/images/{image_id}"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert_eq!(
            image(&s, &image_id, &s.admin).await.status,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_upload_snapshots_and_report_failures_over_http() {
    use strata_agent_api::{ApiError, ControlPlane, Fault, HttpControlPlane};
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "vm1").await;
        // The stack on a real listener, for the HTTP client of the agent contract.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = s.app.clone();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let cp = HttpControlPlane::new(&format!("http://{addr}"), &s.admin);
        // The in-process agents are held: the snapshot comes from this client instead.
        hold(&cloud, true);
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.45",
            json!({"createImage": {"name": "h"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", s.label(), r.raw);
        let image_id = r.json["image_id"].as_str().unwrap().to_string();
        // Several chunks' worth, streamed from the file.
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snap");
        std::fs::write(&path, &data).unwrap();
        cp.upload_snapshot(&id, &image_id, &path).await.unwrap();
        let img = image(&s, &image_id, &s.u1).await;
        assert_eq!(img.json["status"], "active", "{}", img.raw);
        assert_eq!(img.json["size"], data.len() as u64);
        assert_eq!(img.json["checksum"], md5_hex(&data));
        settle(&s, &id, "ACTIVE").await;
        // Once only: the server asks for it no more.
        match cp.upload_snapshot(&id, &image_id, &path).await {
            Err(ApiError::Refused { status: 409, .. }) => {}
            other => panic!("a second upload: {other:?}"),
        }
        // A failure reported over HTTP ends the next snapshot and deletes its image.
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.45",
            json!({"createImage": {"name": "h2"}}),
        )
        .await;
        let second = r.json["image_id"].as_str().unwrap().to_string();
        let fault = Fault {
            message: "disk unreadable".into(),
            details: "test".into(),
            retryable: false,
        };
        cp.snapshot_failed(&id, &second, &fault).await.unwrap();
        settle(&s, &id, "ACTIVE").await;
        assert_eq!(
            image(&s, &second, &s.admin).await.status,
            StatusCode::NOT_FOUND
        );
        let ev = snapshot_events(&s, &id).await;
        assert_eq!(ev[1][0].1.as_deref(), Some("Error"), "{ev:?}");
        assert!(
            ev[1][0].2.as_deref().unwrap().contains("disk unreadable"),
            "{ev:?}"
        );
        match cp.snapshot_failed(&id, &second, &fault).await {
            Err(ApiError::Refused { status: 409, .. }) => {}
            other => panic!("a second failure: {other:?}"),
        }
        server.abort();
    }
}
