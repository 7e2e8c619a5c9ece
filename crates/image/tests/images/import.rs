//! Interoperable import (`glance-direct`) over the real routers, on SQLite and PostgreSQL:
//! stage then import gives the same image as a direct upload of the same bytes; the 409, 400
//! and 415 cases; the discovery documents; failed stages and crash recovery leave no staged
//! data behind.

use crate::common::{poll_status, Stack, MAX_IMAGE};
use crate::id;
use http::{Method, StatusCode};
use serde_json::{json, Value};

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 13 + i / 97) as u8).collect()
}

async fn stage(
    s: &Stack,
    iid: &str,
    token: &str,
    data: &[u8],
    extra: &[(&str, &str)],
) -> StatusCode {
    let mut headers = vec![("content-type", "application/octet-stream")];
    headers.extend_from_slice(extra);
    s.raw(
        Method::PUT,
        &format!("/image/v2/images/{iid}/stage"),
        token,
        &headers,
        data.to_vec(),
    )
    .await
    .status
}

async fn import(s: &Stack, iid: &str, token: &str, body: Value) -> crate::common::Resp {
    s.post(&format!("/image/v2/images/{iid}/import"), token, body)
        .await
}

/// The files in the staging area (temp files included).
fn staged_files(s: &Stack) -> Vec<String> {
    match std::fs::read_dir(s.images.path().join(".staging")) {
        Ok(d) => d
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

const FIELDS: &[&str] = &[
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
];

#[tokio::test]
async fn stage_and_import_match_an_upload() {
    for s in Stack::all().await {
        let data = payload(200_000);
        let body = json!({"disk_format": "raw", "container_format": "bare"});
        // The reference: a direct upload.
        let up = id(&s.image(&s.u1, body.clone()).await);
        assert_eq!(
            s.upload(&up, &s.u1, &data).await.status,
            StatusCode::NO_CONTENT
        );
        let uploaded = s.get(&format!("/image/v2/images/{up}"), &s.u1).await.json;

        let iid = id(&s.image(&s.u1, body.clone()).await);
        // Import before staging: 409.
        let r = import(
            &s,
            &iid,
            &s.u1,
            json!({"method": {"name": "glance-direct"}}),
        )
        .await;
        let msg = r.assert_error(StatusCode::CONFLICT);
        assert!(msg.contains("staged"), "{msg}");
        // Staging: another project cannot, a wrong content type is 415.
        assert_eq!(
            stage(&s, &iid, &s.u2, &data, &[]).await,
            StatusCode::NOT_FOUND
        );
        let r = s
            .raw(
                Method::PUT,
                &format!("/image/v2/images/{iid}/stage"),
                &s.u1,
                &[("content-type", "application/json")],
                data.clone(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        // Stage: 204, uploading, size known, nothing downloadable yet.
        assert_eq!(
            stage(
                &s,
                &iid,
                &s.u1,
                &data,
                &[("x-openstack-image-size", "200000")]
            )
            .await,
            StatusCode::NO_CONTENT,
            "{}",
            s.label()
        );
        let shown = s.get(&format!("/image/v2/images/{iid}"), &s.u1).await.json;
        assert_eq!(shown["status"], "uploading", "{shown}");
        assert_eq!(shown["size"], json!(data.len()));
        assert_eq!(shown["checksum"], Value::Null);
        assert_eq!(
            s.download(&iid, &s.u1, &[]).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(staged_files(&s), vec![iid.clone()]);
        // Staging again: 409 (not queued).
        assert_eq!(
            stage(&s, &iid, &s.u1, &data, &[]).await,
            StatusCode::CONFLICT
        );
        // Unsupported methods: 400; a foreign store: 409; another project: 404.
        for m in ["web-download", "copy-image", "glance-download", "bogus"] {
            let r = import(&s, &iid, &s.u1, json!({"method": {"name": m}})).await;
            r.assert_error(StatusCode::BAD_REQUEST);
        }
        let r = import(
            &s,
            &iid,
            &s.u1,
            json!({"method": {"name": "glance-direct"},
            "stores": ["elsewhere"]}),
        )
        .await;
        r.assert_error(StatusCode::CONFLICT);
        let r = import(
            &s,
            &iid,
            &s.u2,
            json!({"method": {"name": "glance-direct"}}),
        )
        .await;
        r.assert_error(StatusCode::NOT_FOUND);
        // Import: 202, then active with the same size and hashes as the upload.
        let r = import(
            &s,
            &iid,
            &s.u1,
            json!({"method": {"name": "glance-direct"},
            "all_stores": true}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let imported = poll_status(&s, &iid, "active").await;
        for f in FIELDS {
            assert_eq!(imported[f], uploaded[f], "{}: {f}", s.label());
        }
        assert_eq!(imported["stores"], "local");
        assert_eq!(imported["os_glance_failed_import"], "");
        assert_eq!(imported["os_glance_importing_to_stores"], "");
        let r = s.download(&iid, &s.u1, &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], &data[..]);
        // The staged data is gone; importing again: 409.
        assert!(staged_files(&s).is_empty(), "{:?}", staged_files(&s));
        let r = import(
            &s,
            &iid,
            &s.u1,
            json!({"method": {"name": "glance-direct"}}),
        )
        .await;
        r.assert_error(StatusCode::CONFLICT);
    }
}

#[tokio::test]
async fn failed_stages_and_deletes_leave_no_staged_data() {
    for s in Stack::all().await {
        let body = json!({"disk_format": "raw", "container_format": "bare"});
        let iid = id(&s.image(&s.u1, body.clone()).await);
        // Over the cap: 413, queued again, nothing staged.
        let big = payload(MAX_IMAGE as usize + 1);
        assert_eq!(
            stage(&s, &iid, &s.u1, &big, &[]).await,
            StatusCode::PAYLOAD_TOO_LARGE
        );
        poll_status(&s, &iid, "queued").await;
        assert!(staged_files(&s).is_empty(), "{:?}", staged_files(&s));
        // Fewer bytes than announced: 400, queued again.
        assert_eq!(
            stage(&s, &iid, &s.u1, b"abc", &[("x-openstack-image-size", "10")]).await,
            StatusCode::BAD_REQUEST
        );
        poll_status(&s, &iid, "queued").await;
        assert!(staged_files(&s).is_empty(), "{:?}", staged_files(&s));
        // Formats must be set before import.
        let bare = id(&s.image(&s.u1, json!({})).await);
        assert_eq!(
            stage(&s, &bare, &s.u1, b"abc", &[]).await,
            StatusCode::NO_CONTENT
        );
        let r = import(
            &s,
            &bare,
            &s.u1,
            json!({"method": {"name": "glance-direct"}}),
        )
        .await;
        let msg = r.assert_error(StatusCode::CONFLICT);
        assert!(msg.contains("container_format"), "{msg}");
        // Deleting a staged image removes the staged data.
        assert_eq!(staged_files(&s), vec![bare.clone()]);
        let r = s.delete(&format!("/image/v2/images/{bare}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(staged_files(&s).is_empty(), "{:?}", staged_files(&s));
        // An active image cannot be staged to (409) nor imported into.
        let up = id(&s.image(&s.u1, body.clone()).await);
        assert_eq!(
            s.upload(&up, &s.u1, b"data").await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(stage(&s, &up, &s.u1, b"x", &[]).await, StatusCode::CONFLICT);
        let r = import(&s, &up, &s.u1, json!({"method": {"name": "glance-direct"}})).await;
        let msg = r.assert_error(StatusCode::CONFLICT);
        assert!(msg.contains("active"), "{msg}");
    }
}

#[tokio::test]
async fn recover_sweeps_interrupted_stages_and_imports() {
    use strata_image::db::{self, DataChange};
    for s in Stack::all().await {
        let body = json!({"disk_format": "raw", "container_format": "bare"});
        // A completed stage (kept), an import cut off (reset), a stage cut off (reset), and an
        // orphaned staged blob (removed).
        let kept = id(&s.image(&s.u1, body.clone()).await);
        assert_eq!(
            stage(&s, &kept, &s.u1, b"kept", &[]).await,
            StatusCode::NO_CONTENT
        );
        let importing = id(&s.image(&s.u1, body.clone()).await);
        assert_eq!(
            stage(&s, &importing, &s.u1, b"imp", &[]).await,
            StatusCode::NO_CONTENT
        );
        let store = &s.db.store;
        assert!(db::transition(
            store,
            &importing,
            "uploading",
            "importing",
            DataChange::Keep,
            &[],
            1
        )
        .await
        .unwrap());
        let cut = id(&s.image(&s.u1, body.clone()).await);
        assert!(
            db::transition(store, &cut, "queued", "uploading", DataChange::Keep, &[], 1)
                .await
                .unwrap()
        );
        let orphan = id(&s.image(&s.u1, body.clone()).await);
        std::fs::write(s.images.path().join(".staging").join(&orphan), b"o").unwrap();
        std::fs::write(s.images.path().join(".staging").join(".x.1.tmp"), b"t").unwrap();

        let data = strata_image::LocalStore::new(s.images.path()).unwrap();
        let svc = strata_image::ImageService::new(
            store.clone(),
            std::sync::Arc::new(s.identity.clone()),
            "http://test",
            std::sync::Arc::new(data),
            MAX_IMAGE,
        );
        svc.recover().await.unwrap();
        let status = |iid: String| async move { db::get(store, &iid).await.unwrap().unwrap() };
        assert_eq!(status(kept.clone()).await.status, "uploading");
        let i = status(importing.clone()).await;
        assert_eq!(i.status, "queued");
        assert_eq!(i.properties["os_glance_failed_import"], "local");
        assert_eq!(status(cut.clone()).await.status, "queued");
        assert_eq!(status(orphan.clone()).await.status, "queued");
        assert_eq!(staged_files(&s), vec![kept.clone()]);
        // The kept stage still imports.
        let r = import(
            &s,
            &kept,
            &s.u1,
            json!({"method": {"name": "glance-direct"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let img = poll_status(&s, &kept, "active").await;
        assert_eq!(img["size"], 4);
    }
}

#[tokio::test]
async fn info_documents() {
    for s in Stack::all().await {
        let r = s.get("/image/v2/info/import", &s.u1).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.json,
            json!({"import-methods": {"description": "Import methods available.",
                "type": "array", "value": ["glance-direct"]}})
        );
        let r = s.get("/image/v2/info/stores", &s.u1).await;
        assert_eq!(r.status, StatusCode::OK);
        let stores = r.json["stores"].as_array().unwrap();
        assert_eq!(stores.len(), 1);
        assert_eq!(stores[0]["id"], "local");
        assert_eq!(stores[0]["default"], "true");
        let r = s
            .call(Method::GET, "/image/v2/info/import", None, &[], None)
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}
