//! `api/actions.rs` (`POST /volumes/{id}/action`) and `api/attachments.rs` (3.27/3.44), end to
//! end through the assembled router.

mod common;

use common::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};

/// `POST .../volumes/{id}/action` as `token` at microversion `mv` (3.0 when `None`).
async fn act(s: &Stack, token: &str, id: &str, mv: Option<&str>, body: Value) -> Resp {
    s.call_mv(
        Method::POST,
        &s.url(token, &format!("/volumes/{id}/action")),
        token,
        mv,
        Some(body),
    )
    .await
}

fn vid(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

async fn show(s: &Stack, token: &str, id: &str) -> Value {
    let r = s.get(&s.url(token, &format!("/volumes/{id}")), token).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    r.json["volume"].clone()
}

async fn set_quota(s: &Stack, project: &str, resource: &str, limit: i64) {
    let (p, r) = (project.to_string(), resource.to_string());
    s.svc
        .store()
        .write(move |tx| {
            let (p, r) = (p.clone(), r.clone());
            Box::pin(async move { strata_volume::db::set_quota(tx, &p, &r, limit).await })
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn extend_grows_the_volume_and_its_file_within_quota() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        let id = vid(&s.volume(&u1, 1).await);
        let r = act(&s, &u1, &id, None, json!({"os-extend": {"new_size": 2}})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let v = s.wait_volume(&u1, &id, "available").await;
        assert_eq!(v["size"], 2);
        let path = s.volume_path(&id).await;
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * GIB);

        // Not larger; not a size.
        let r = act(&s, &u1, &id, None, json!({"os-extend": {"new_size": 2}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = act(&s, &u1, &id, None, json!({"os-extend": {"new_size": "x"}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = act(&s, &u1, &id, None, json!({"os-extend": {}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);

        // The gigabytes quota covers the growth: 2 used, limit 4, +3 refused.
        let p1 = s.p1.clone();
        set_quota(&s, &p1, "gigabytes", 4).await;
        let r = act(&s, &u1, &id, None, json!({"os-extend": {"new_size": 5}})).await;
        let msg = r.assert_error(StatusCode::PAYLOAD_TOO_LARGE);
        assert!(msg.contains("gigabytes"), "{msg}");
        assert_eq!(show(&s, &u1, &id).await["status"], "available");
        set_quota(&s, &p1, "per_volume_gigabytes", 3).await;
        let r = act(&s, &u1, &id, None, json!({"os-extend": {"new_size": 4}})).await;
        r.assert_error(StatusCode::PAYLOAD_TOO_LARGE);
        let r = act(&s, &u1, &id, None, json!({"os-extend": {"new_size": "3"}})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        assert_eq!(s.wait_volume(&u1, &id, "available").await["size"], 3);

        // In use: only from 3.42.
        set_quota(&s, &p1, "gigabytes", 100).await;
        set_quota(&s, &p1, "per_volume_gigabytes", -1).await;
        let server = strata_core::ids::uuid();
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-attach": {"instance_uuid": server,
            "mountpoint": "/dev/vdb"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let r = act(&s, &u1, &id, None, json!({"os-extend": {"new_size": 4}})).await;
        let msg = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(msg.starts_with("Invalid volume:"), "{msg}");
        let r = act(
            &s,
            &u1,
            &id,
            Some("3.42"),
            json!({"os-extend": {"new_size": 4}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let v = s.wait_volume(&u1, &id, "in-use").await;
        assert_eq!(v["size"], 4);
        assert_eq!(
            std::fs::metadata(s.volume_path(&id).await).unwrap().len(),
            4 * GIB
        );
        // A reader may not extend.
        let reader = s.reader.clone();
        let r = act(
            &s,
            &reader,
            &id,
            Some("3.42"),
            json!({"os-extend": {"new_size": 5}}),
        )
        .await;
        r.assert_error(StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn bootable_and_readonly_flags() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        let id = vid(&s.volume(&u1, 1).await);
        for (b, want) in [(json!(true), "true"), (json!("false"), "false")] {
            let r = act(
                &s,
                &u1,
                &id,
                None,
                json!({"os-set_bootable": {"bootable": b}}),
            )
            .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
            assert_eq!(show(&s, &u1, &id).await["bootable"], want);
        }
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-set_bootable": {"bootable": "maybe"}}),
        )
        .await;
        r.assert_error(StatusCode::BAD_REQUEST);

        for (ro, want) in [(true, "True"), (false, "False"), (true, "True")] {
            let r = act(
                &s,
                &u1,
                &id,
                None,
                json!({"os-update_readonly_flag": {"readonly": ro}}),
            )
            .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
            assert_eq!(show(&s, &u1, &id).await["metadata"]["readonly"], want);
        }
        // A read-only volume attaches read-only only; the connection says so.
        let server = strata_core::ids::uuid();
        let attach = |mode: &str| {
            json!({"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdc",
                "mode": mode}})
        };
        let r = act(&s, &u1, &id, None, attach("rw")).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = act(&s, &u1, &id, None, attach("xx")).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = act(&s, &u1, &id, None, attach("ro")).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let v = show(&s, &u1, &id).await;
        assert_eq!(v["status"], "in-use");
        assert_eq!(v["metadata"]["attached_mode"], "ro");
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-initialize_connection": {"connector": {"host": "h1"}}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["connection_info"]["data"]["access_mode"], "ro");
        // The flag cannot change while attached.
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-update_readonly_flag": {"readonly": false}}),
        )
        .await;
        r.assert_error(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn upload_to_image_carries_the_volume_bytes() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        let id = vid(&s.volume(&u1, 1).await);
        let pattern: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        {
            use std::io::{Seek, SeekFrom, Write};
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(s.volume_path(&id).await)
                .unwrap();
            f.seek(SeekFrom::Start(0)).unwrap();
            f.write_all(&pattern).unwrap();
            f.sync_all().unwrap();
        }
        // Bad formats are refused before anything changes.
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-volume_upload_image": {
            "image_name": "x", "disk_format": "zip"}}),
        )
        .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = act(&s, &u1, &id, None, json!({"os-volume_upload_image": {}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // A private image from the volume, as qcow2 (a raw GiB would exceed the image cap).
        let r = act(
            &s,
            &u1,
            &id,
            Some("3.1"),
            json!({"os-volume_upload_image": {
            "image_name": "from-volume", "disk_format": "qcow2"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let up = &r.json["os-volume_upload_image"];
        assert_eq!(up["id"], id.as_str());
        assert_eq!(up["status"], "uploading");
        assert_eq!(up["disk_format"], "qcow2");
        assert_eq!(up["container_format"], "bare");
        assert_eq!(up["image_name"], "from-volume");
        assert_eq!(up["visibility"], "private");
        assert_eq!(up["size"], 1);
        assert!(up["volume_type"]["id"].is_string(), "{}", r.raw);
        let image = up["image_id"].as_str().unwrap().to_string();
        // Uploading: other actions are refused meanwhile or it is already back.
        s.svc.idle().await;
        s.wait_volume(&u1, &id, "available").await;
        let r = s.get(&format!("/image/v2/images/{image}"), &u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["status"], "active", "{}", r.raw);
        assert_eq!(r.json["name"], "from-volume");
        assert_eq!(r.json["disk_format"], "qcow2");
        assert_eq!(r.json["owner"], s.p1.as_str());
        let size = r.json["size"].as_u64().unwrap();
        let r = s.get(&format!("/image/v2/images/{image}/file"), &u1).await;
        assert_eq!(r.status, StatusCode::OK);
        // The body is binary: fetch it raw.
        let req = http::Request::builder()
            .method(Method::GET)
            .uri(format!("/image/v2/images/{image}/file"))
            .header("x-auth-token", &u1)
            .body(axum::body::Body::empty())
            .unwrap();
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let resp = s.app.clone().oneshot(req).await.unwrap();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len() as u64, size);
        assert_eq!(&bytes[..4], b"QFI\xfb");
        let dir = tempfile::tempdir().unwrap();
        let (q, raw) = (dir.path().join("img.qcow2"), dir.path().join("img.raw"));
        std::fs::write(&q, &bytes).unwrap();
        let out = std::process::Command::new("qemu-img")
            .args(["convert", "-q", "-f", "qcow2", "-O", "raw"])
            .arg(&q)
            .arg(&raw)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let back = std::fs::read(&raw).unwrap();
        assert_eq!(back.len() as u64, GIB);
        assert_eq!(&back[..pattern.len()], &pattern[..]);
        assert!(back[pattern.len()..pattern.len() + 4096]
            .iter()
            .all(|b| *b == 0));

        // In use: only with force.
        let server = strata_core::ids::uuid();
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-attach": {"instance_uuid": server,
            "mountpoint": "/dev/vdb"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-volume_upload_image": {
            "image_name": "again", "disk_format": "qcow2"}}),
        )
        .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-volume_upload_image": {
            "image_name": "again", "disk_format": "qcow2", "force": true}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.svc.idle().await;
        s.wait_volume(&u1, &id, "in-use").await;
        // A public image needs the admin: refused, and the volume is left as it was.
        let r = act(
            &s,
            &u1,
            &id,
            Some("3.1"),
            json!({"os-volume_upload_image": {
            "image_name": "pub", "disk_format": "qcow2", "force": true,
            "visibility": "public"}}),
        )
        .await;
        r.assert_error(StatusCode::FORBIDDEN);
        assert_eq!(show(&s, &u1, &id).await["status"], "in-use");
    }
}

#[tokio::test]
async fn reserve_attach_detach_legacy_flow() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        let id = vid(&s.volume(&u1, 1).await);
        let r = act(&s, &u1, &id, None, json!({"os-reserve": {}})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        assert_eq!(show(&s, &u1, &id).await["status"], "attaching");
        let r = act(&s, &u1, &id, None, json!({"os-reserve": null})).await;
        let msg = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(msg.starts_with("Invalid volume:"), "{msg}");
        let r = act(&s, &u1, &id, None, json!({"os-unreserve": {}})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        assert_eq!(show(&s, &u1, &id).await["status"], "available");

        // Reserve, connect, attach.
        act(&s, &u1, &id, None, json!({"os-reserve": {}})).await;
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-initialize_connection": {"connector": {"host": "h1"}}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let info = &r.json["connection_info"];
        assert_eq!(info["driver_volume_type"], "file");
        assert_eq!(info["data"]["access_mode"], "rw");
        let r = act(&s, &u1, &id, None, json!({"os-initialize_connection": {}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let server = strata_core::ids::uuid();
        let r = act(&s, &u1, &id, None, json!({"os-attach": {}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-attach": {"mountpoint": "/dev/vdb"}}),
        )
        .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-attach": {"instance_uuid": server,
            "mountpoint": "/dev/vdb"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let v = show(&s, &u1, &id).await;
        assert_eq!(v["status"], "in-use");
        assert_eq!(v["attachments"][0]["server_id"], server.as_str());
        assert_eq!(v["attachments"][0]["device"], "/dev/vdb");
        assert_eq!(v["attachments"][0]["volume_id"], id.as_str());
        // Not multiattach: a second server is refused; deleting an attached volume too.
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-attach": {
            "instance_uuid": strata_core::ids::uuid(), "mountpoint": "/dev/vdb"}}),
        )
        .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s.delete(&s.url(&u1, &format!("/volumes/{id}")), &u1).await;
        let msg = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(msg.starts_with("Invalid volume:"), "{msg}");
        // Even forced.
        let admin = s.admin.clone();
        let r = act(&s, &admin, &id, None, json!({"os-force_delete": {}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);

        // Begin / roll back / detach.
        let r = act(&s, &u1, &id, None, json!({"os-begin_detaching": {}})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        assert_eq!(show(&s, &u1, &id).await["status"], "detaching");
        let r = act(&s, &u1, &id, None, json!({"os-roll_detaching": {}})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        assert_eq!(show(&s, &u1, &id).await["status"], "in-use");
        act(&s, &u1, &id, None, json!({"os-begin_detaching": {}})).await;
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-terminate_connection": {"connector": {"host": "h1"}}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-detach": {
            "attachment_id": strata_core::ids::uuid()}}),
        )
        .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = act(&s, &u1, &id, None, json!({"os-detach": {}})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let v = show(&s, &u1, &id).await;
        assert_eq!(v["status"], "available");
        assert_eq!(v["attachments"], json!([]));
        assert!(v["metadata"].get("attached_mode").is_none(), "{v}");
        // Then it deletes.
        let r = s.delete(&s.url(&u1, &format!("/volumes/{id}")), &u1).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
    }
}

#[tokio::test]
async fn multiattach_volumes_take_two_servers() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        let v = s
            .create_volume(&u1, json!({"size": 1, "multiattach": true}))
            .await;
        let id = vid(&v);
        s.wait_volume(&u1, &id, "available").await;
        let (a, b) = (strata_core::ids::uuid(), strata_core::ids::uuid());
        for server in [&a, &b] {
            let r = act(
                &s,
                &u1,
                &id,
                None,
                json!({"os-attach": {"instance_uuid": server,
                "mountpoint": "/dev/vdb"}}),
            )
            .await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        }
        let v = show(&s, &u1, &id).await;
        assert_eq!(v["attachments"].as_array().unwrap().len(), 2);
        // Two attachments: detach must name one.
        let r = act(&s, &u1, &id, None, json!({"os-detach": {}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let first = v["attachments"][0]["attachment_id"]
            .as_str()
            .unwrap()
            .to_string();
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-detach": {"attachment_id": first}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let v = show(&s, &u1, &id).await;
        assert_eq!(v["status"], "in-use");
        assert_eq!(v["attachments"].as_array().unwrap().len(), 1);
        // The admin forces the last one off.
        let admin = s.admin.clone();
        let r = act(&s, &u1, &id, None, json!({"os-force_detach": {}})).await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = s
            .call_mv(
                Method::POST,
                &format!("/volume/v3/{}/volumes/{id}/action", s.p1),
                &admin,
                None,
                Some(json!({"os-force_detach": {}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        assert_eq!(show(&s, &u1, &id).await["status"], "available");
    }
}

#[tokio::test]
async fn attachments_api_flow() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        let id = vid(&s.volume(&u1, 1).await);
        let server = strata_core::ids::uuid();
        let url = s.url(&u1, "/attachments");
        let body = json!({"attachment": {"volume_uuid": id, "instance_uuid": server}});
        // Not before 3.27.
        let r = s.post_mv(&url, &u1, "3.26", body.clone()).await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = s.get(&url, &u1).await;
        r.assert_error(StatusCode::NOT_FOUND);
        // Validation.
        let r = s
            .post_mv(
                &url,
                &u1,
                "3.27",
                json!({"attachment": {"volume_uuid": id}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .post_mv(
                &url,
                &u1,
                "3.27",
                json!({"attachment": {
                "volume_uuid": strata_core::ids::uuid(), "instance_uuid": server}}),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        // Another project cannot attach the volume.
        let u2 = s.u2.clone();
        let r = s
            .post_mv(&s.url(&u2, "/attachments"), &u2, "3.27", body.clone())
            .await;
        r.assert_error(StatusCode::NOT_FOUND);

        // Reserve without a connector.
        let r = s.post_mv(&url, &u1, "3.27", body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let a = r.json["attachment"].clone();
        assert_eq!(a["status"], "reserved");
        assert_eq!(a["instance"], server.as_str());
        assert_eq!(a["volume_id"], id.as_str());
        assert_eq!(a["attached_at"], "");
        assert_eq!(a["attach_mode"], "rw");
        let aid = a["id"].as_str().unwrap().to_string();
        assert_eq!(show(&s, &u1, &id).await["status"], "reserved");
        // Not multiattach: another server is refused.
        let r = s
            .post_mv(
                &url,
                &u1,
                "3.27",
                json!({"attachment": {"volume_uuid": id,
                "instance_uuid": strata_core::ids::uuid()}}),
            )
            .await;
        let msg = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(msg.starts_with("Invalid volume:"), "{msg}");

        // Connect.
        let one = format!("{url}/{aid}");
        let r = s.put_mv(&one, &u1, "3.27", json!({"attachment": {}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .put_mv(
                &one,
                &u1,
                "3.27",
                json!({"attachment": {"connector": {
                "host": "h1", "mountpoint": "/dev/vdb"}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let a = &r.json["attachment"];
        assert_eq!(a["status"], "attaching");
        assert_eq!(a["connection_info"]["driver_volume_type"], "file");
        assert_eq!(a["connection_info"]["data"]["access_mode"], "rw");
        assert_eq!(show(&s, &u1, &id).await["status"], "attaching");

        // Complete: 3.44.
        let action = format!("{one}/action");
        let r = s
            .post_mv(&action, &u1, "3.27", json!({"os-complete": null}))
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = s
            .post_mv(&action, &u1, "3.44", json!({"os-complete": null}))
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let v = show(&s, &u1, &id).await;
        assert_eq!(v["status"], "in-use");
        assert_eq!(v["attachments"][0]["attachment_id"], aid.as_str());
        assert_eq!(v["attachments"][0]["server_id"], server.as_str());

        // Show and lists.
        let r = s.get_mv(&one, &u1, "3.27").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["attachment"]["status"], "attached");
        assert!(r.json["attachment"]["attached_at"].as_str().unwrap().len() > 10);
        let r = s.get_mv(&url, &u1, "3.27").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["attachments"].as_array().unwrap().len(), 1);
        assert!(r.json["attachments"][0].get("connection_info").is_none());
        let r = s.get_mv(&format!("{url}/detail"), &u1, "3.27").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["attachments"][0]["attach_mode"], "rw");
        let r = s
            .get_mv(
                &format!("{url}?volume_id={}", strata_core::ids::uuid()),
                &u1,
                "3.27",
            )
            .await;
        assert_eq!(r.json["attachments"], json!([]));
        // Another project sees nothing of it.
        let r = s.get_mv(&s.url(&u2, "/attachments"), &u2, "3.27").await;
        assert_eq!(r.json["attachments"], json!([]));
        let r = s
            .get_mv(&s.url(&u2, &format!("/attachments/{aid}")), &u2, "3.27")
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = s
            .delete_mv(&s.url(&u2, &format!("/attachments/{aid}")), &u2, "3.27")
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        // In use: no delete.
        let r = s.delete(&s.url(&u1, &format!("/volumes/{id}")), &u1).await;
        r.assert_error(StatusCode::BAD_REQUEST);

        // Detach.
        let r = s.delete_mv(&one, &u1, "3.27").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json, json!({"attachments": []}));
        let v = show(&s, &u1, &id).await;
        assert_eq!(v["status"], "available");
        assert_eq!(v["attachments"], json!([]));
        let r = s.get_mv(&one, &u1, "3.27").await;
        r.assert_error(StatusCode::NOT_FOUND);

        // With a connector at once: attaching; deleting it leaves the volume available.
        let r = s
            .post_mv(
                &url,
                &u1,
                "3.54",
                json!({"attachment": {"volume_uuid": id,
                "instance_uuid": server, "connector": {"host": "h2"}, "mode": "ro"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["attachment"]["status"], "attaching");
        assert_eq!(r.json["attachment"]["attach_mode"], "ro");
        assert_eq!(
            r.json["attachment"]["connection_info"]["data"]["access_mode"],
            "ro"
        );
        let aid = r.json["attachment"]["id"].as_str().unwrap().to_string();
        let r = s.delete_mv(&format!("{url}/{aid}"), &u1, "3.27").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(show(&s, &u1, &id).await["status"], "available");
    }
}

#[tokio::test]
async fn policy_admin_actions_and_unknown_actions() {
    for s in Stack::all().await {
        let (u1, u2, admin) = (s.u1.clone(), s.u2.clone(), s.admin.clone());
        let id = vid(&s.volume(&u1, 1).await);
        // Another project: the volume does not exist.
        let r = s
            .call_mv(
                Method::POST,
                &s.url(&u2, &format!("/volumes/{id}/action")),
                &u2,
                None,
                Some(json!({"os-reserve": {}})),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = act(
            &s,
            &u1,
            &strata_core::ids::uuid(),
            None,
            json!({"os-reserve": {}}),
        )
        .await;
        r.assert_error(StatusCode::NOT_FOUND);
        // Unknown or malformed actions.
        let r = act(&s, &u1, &id, None, json!({"os-fly": {}})).await;
        let msg = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(msg.contains("os-fly"), "{msg}");
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-reserve": {}, "os-unreserve": {}}),
        )
        .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = act(&s, &u1, &id, None, json!({})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // Admin actions.
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-reset_status": {"status": "error"}}),
        )
        .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = act(&s, &u1, &id, None, json!({"os-force_delete": {}})).await;
        r.assert_error(StatusCode::FORBIDDEN);
        let admin_url = format!("/volume/v3/{}/volumes/{id}/action", s.p1);
        let admin_act = |body: Value| {
            let (s, admin, admin_url) = (&s, admin.clone(), admin_url.clone());
            async move {
                s.call_mv(Method::POST, &admin_url, &admin, None, Some(body))
                    .await
            }
        };
        let r = admin_act(json!({"os-reset_status": {}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = admin_act(json!({"os-reset_status": {"status": "bogus"}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        for status in ["error", "available", "maintenance", "attaching"] {
            let r = admin_act(json!({"os-reset_status": {"status": status}})).await;
            assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
            assert_eq!(show(&s, &u1, &id).await["status"], status);
        }
        // A plain delete refuses `attaching`; the forced one does not.
        let r = s.delete(&s.url(&u1, &format!("/volumes/{id}")), &u1).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = admin_act(json!({"os-force_delete": {}})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.wait_gone(&u1, &format!("/volumes/{id}")).await;
        s.svc.idle().await;

        // Image metadata.
        let id = vid(&s.volume(&u1, 1).await);
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-set_image_metadata": {"metadata": {"k1": "v1", "k2": "v2"}}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["metadata"], json!({"k1": "v1", "k2": "v2"}));
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-unset_image_metadata": {"key": "k1"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let r = act(
            &s,
            &u1,
            &id,
            None,
            json!({"os-unset_image_metadata": {"key": "k1"}}),
        )
        .await;
        r.assert_error(StatusCode::NOT_FOUND);
        let reader = s.reader.clone();
        let r = act(
            &s,
            &reader,
            &id,
            None,
            json!({"os-show_image_metadata": {}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["metadata"], json!({"k2": "v2"}));
        assert_eq!(
            show(&s, &u1, &id).await["volume_image_metadata"],
            json!({"k2": "v2"})
        );
        let r = act(&s, &reader, &id, None, json!({"os-reserve": {}})).await;
        r.assert_error(StatusCode::FORBIDDEN);
    }
}
