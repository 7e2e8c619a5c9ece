//! Image data over the real routers, on SQLite and PostgreSQL: upload (status, size, hashes,
//! virtual size), download (whole, ranges, headers), the 409/403/404/413 cases, and that deletes
//! and failed uploads leave nothing in the store.

use crate::common::{Stack, MAX_IMAGE};
use crate::id;
use http::StatusCode;
use serde_json::json;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex(&md5::Md5::digest(data))
}

fn sha512_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha512::digest(data))
}

/// Some bytes that are not all the same.
fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

#[tokio::test]
async fn upload_download_and_ranges() {
    for s in Stack::all().await {
        let img = s
            .image(
                &s.u1,
                json!({"name": "d", "disk_format": "raw", "container_format": "bare"}),
            )
            .await;
        let iid = id(&img);
        // No data yet: 204, as Glance answers for a queued image.
        let r = s.download(&iid, &s.u1, &[]).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        // Larger than the service-wide body limit: image data is not subject to it.
        let data = payload(300_000);
        let r = s.upload(&iid, &s.u1, &data).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", s.label());
        let shown = s.get(&format!("/image/v2/images/{iid}"), &s.u1).await.json;
        assert_eq!(shown["status"], "active", "{shown}");
        assert_eq!(shown["size"], json!(data.len()));
        assert_eq!(shown["virtual_size"], json!(data.len()));
        assert_eq!(shown["checksum"], json!(md5_hex(&data)));
        assert_eq!(shown["os_hash_algo"], "sha512");
        assert_eq!(shown["os_hash_value"], json!(sha512_hex(&data)));
        assert_eq!(s.stored_files(), vec![iid.clone()]);

        let r = s.download(&iid, &s.u1, &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(&r.body[..], &data[..]);
        assert_eq!(r.headers["content-type"], "application/octet-stream");
        assert_eq!(r.headers["content-md5"], md5_hex(&data).as_str());
        assert_eq!(r.headers["content-length"], data.len().to_string().as_str());
        // Another project does not see this (shared, no members) image.
        assert_eq!(
            s.download(&iid, &s.u2, &[]).await.status,
            StatusCode::NOT_FOUND
        );

        let r = s.download(&iid, &s.u1, &[("range", "bytes=10-19")]).await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(&r.body[..], &data[10..20]);
        assert_eq!(r.headers["content-range"], "bytes 10-19/300000");
        assert_eq!(r.headers["content-length"], "10");
        let r = s.download(&iid, &s.u1, &[("range", "bytes=299990-")]).await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(&r.body[..], &data[299_990..]);
        let r = s.download(&iid, &s.u1, &[("range", "bytes=-5")]).await;
        assert_eq!(&r.body[..], &data[299_995..]);
        let r = s.download(&iid, &s.u1, &[("range", "bytes=300000-")]).await;
        assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(r.headers["content-range"], "bytes */300000");

        // The data's columns filter listings, as in Glance (Tempest's `size` filter).
        for q in [
            format!("size={}", data.len()),
            format!("checksum={}", md5_hex(&data)),
            format!("os_hash_value={}", sha512_hex(&data)),
        ] {
            assert_eq!(s.ids(&s.u1, &q).await, vec![iid.clone()], "{q}");
        }
        assert!(s.ids(&s.u1, "size=1").await.is_empty());

        // A second upload: 409, and the data is untouched.
        let r = s.upload(&iid, &s.u1, b"other").await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        assert_eq!(s.download(&iid, &s.u1, &[]).await.body.len(), data.len());

        // Deleting the image removes its data.
        let r = s.delete(&format!("/image/v2/images/{iid}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(s.stored_files().is_empty(), "{:?}", s.stored_files());
    }
}

#[tokio::test]
async fn empty_image_and_content_type() {
    for s in Stack::all().await {
        let iid = id(&s.image(&s.u1, json!({"disk_format": "raw"})).await);
        let r = s
            .raw(
                http::Method::PUT,
                &format!("/image/v2/images/{iid}/file"),
                &s.u1,
                &[("content-type", "application/json")],
                b"{}".to_vec(),
            )
            .await;
        assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let r = s.upload(&iid, &s.u1, b"").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let shown = s.get(&format!("/image/v2/images/{iid}"), &s.u1).await.json;
        assert_eq!(shown["status"], "active");
        assert_eq!(shown["size"], 0);
        assert_eq!(shown["checksum"], md5_hex(b""));
        let r = s.download(&iid, &s.u1, &[]).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.is_empty());
    }
}

#[tokio::test]
async fn qcow2_virtual_size_matches_qemu_img() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.qcow2");
    let made = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&path)
        .arg("3M")
        .status();
    let (data, expected) = if made.is_ok_and(|st| st.success()) {
        let out = std::process::Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(&path)
            .output()
            .unwrap();
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (
            std::fs::read(&path).unwrap(),
            info["virtual-size"].as_u64().unwrap(),
        )
    } else {
        // Without qemu-img: a hand-built version 3 header for 3 MiB.
        let mut h = b"QFI\xfb\0\0\0\x03".to_vec();
        h.resize(24, 0);
        h.extend_from_slice(&(3u64 << 20).to_be_bytes());
        h.resize(512, 0);
        (h, 3 << 20)
    };
    for s in Stack::all().await {
        let iid = id(&s
            .image(
                &s.u1,
                json!({"disk_format": "qcow2", "container_format": "bare"}),
            )
            .await);
        assert_eq!(
            s.upload(&iid, &s.u1, &data).await.status,
            StatusCode::NO_CONTENT
        );
        let shown = s.get(&format!("/image/v2/images/{iid}"), &s.u1).await.json;
        assert_eq!(shown["virtual_size"], json!(expected), "{shown}");
        assert_eq!(shown["size"], json!(data.len()));
        // A qcow2 image whose data is not qcow2: no virtual size.
        let iid = id(&s.image(&s.u1, json!({"disk_format": "qcow2"})).await);
        s.upload(&iid, &s.u1, b"not a qcow2 header").await;
        let shown = s.get(&format!("/image/v2/images/{iid}"), &s.u1).await.json;
        assert_eq!(shown["virtual_size"], json!(null));
    }
}

#[tokio::test]
async fn who_may_upload_and_download() {
    for s in Stack::all().await {
        let private = id(&s.image(&s.u1, json!({"visibility": "private"})).await);
        // Another project does not see it: 404 both ways.
        assert_eq!(
            s.upload(&private, &s.u2, b"x").await.status,
            StatusCode::NOT_FOUND
        );
        // A reader of the owning project sees it but may not upload.
        assert_eq!(
            s.upload(&private, &s.reader, b"x").await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            s.get(&format!("/image/v2/images/{private}"), &s.u1)
                .await
                .json["status"],
            "queued"
        );
        assert_eq!(
            s.upload(&private, &s.u1, b"data").await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            s.download(&private, &s.u2, &[]).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            &s.download(&private, &s.reader, &[]).await.body[..],
            b"data"
        );

        // A public image (admin-made): others download it, may not upload to it.
        let public = id(&s
            .image(
                &s.admin,
                json!({"visibility": "public", "disk_format": "raw"}),
            )
            .await);
        assert_eq!(
            s.upload(&public, &s.u2, b"x").await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            s.upload(&public, &s.admin, b"pub").await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(&s.download(&public, &s.u2, &[]).await.body[..], b"pub");
        // Without a token: 401.
        assert_eq!(
            s.upload(&public, "bogus", b"x").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
}

#[tokio::test]
async fn deactivate_and_reactivate() {
    for s in Stack::all().await {
        let iid = id(&s.image(&s.u1, json!({"disk_format": "raw"})).await);
        s.upload(&iid, &s.u1, b"bits").await;
        let action = |a: &str| format!("/image/v2/images/{iid}/actions/{a}");
        // Glance's policy: admins and members of the owning project; not a reader of it, not
        // another project's member (to whom the private image is not even visible).
        s.post(&action("deactivate"), &s.reader, json!({}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.post(&action("deactivate"), &s.u2, json!({}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s.post(&action("deactivate"), &s.u1, json!({})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.post(&action("reactivate"), &s.reader, json!({}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.post(&action("reactivate"), &s.admin, json!({})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let r = s.post(&action("deactivate"), &s.admin, json!({})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        let shown = s.get(&format!("/image/v2/images/{iid}"), &s.u1).await.json;
        assert_eq!(shown["status"], "deactivated");
        // Non-admins may not download a deactivated image; admins may.
        assert_eq!(
            s.download(&iid, &s.u1, &[]).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(&s.download(&iid, &s.admin, &[]).await.body[..], b"bits");
        // Deactivated images take no new data either.
        assert_eq!(
            s.upload(&iid, &s.u1, b"x").await.status,
            StatusCode::CONFLICT
        );
        let r = s.post(&action("reactivate"), &s.u1, json!({})).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        assert_eq!(&s.download(&iid, &s.u1, &[]).await.body[..], b"bits");
    }
}

#[tokio::test]
async fn oversized_upload_leaves_nothing() {
    for s in Stack::all().await {
        let iid = id(&s.image(&s.u1, json!({"disk_format": "raw"})).await);
        let r = s
            .upload(&iid, &s.u1, &payload(MAX_IMAGE as usize + 1))
            .await;
        assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
        // Killed, nothing stored; the image takes no more data.
        let shown = crate::common::poll_status(&s, &iid, "killed").await;
        assert_eq!(shown["size"], json!(null));
        assert!(s.stored_files().is_empty(), "{:?}", s.stored_files());
        assert_eq!(
            s.upload(&iid, &s.u1, b"retry").await.status,
            StatusCode::CONFLICT
        );
        // A killed image can be deleted like any other.
        let r = s
            .call(
                http::Method::DELETE,
                &format!("/image/v2/images/{iid}"),
                Some(&s.u1),
                &[],
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    }
}

#[tokio::test]
async fn aborted_upload_is_killed() {
    use futures::StreamExt;
    use tower::ServiceExt;
    for s in Stack::all().await {
        let iid = id(&s.image(&s.u1, json!({"disk_format": "raw"})).await);
        // The client sends some bytes, then the connection fails.
        let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = vec![
            Ok(bytes::Bytes::from(payload(70_000))),
            Err(std::io::Error::other("connection reset")),
        ];
        let body = axum::body::Body::from_stream(futures::stream::iter(chunks).boxed());
        let req = http::Request::builder()
            .method(http::Method::PUT)
            .uri(format!("/image/v2/images/{iid}/file"))
            .header("x-auth-token", &s.u1)
            .header("content-type", "application/octet-stream")
            .body(body)
            .unwrap();
        let r = s.app.clone().oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let shown = crate::common::poll_status(&s, &iid, "killed").await;
        assert_eq!(shown["checksum"], json!(null));
        assert!(s.stored_files().is_empty(), "{:?}", s.stored_files());
        assert_eq!(
            s.download(&iid, &s.u1, &[]).await.status,
            StatusCode::NO_CONTENT
        );
    }
}

#[tokio::test]
async fn start_recovers_uploads_cut_off_by_a_crash() {
    for s in Stack::all().await {
        let body = json!({"name": "cut", "disk_format": "raw", "container_format": "bare"});
        let cut = s.image(&s.u1, body.clone()).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let whole = s.image(&s.u1, body).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            s.upload(&whole, &s.u1, b"complete").await.status,
            StatusCode::NO_CONTENT
        );
        // What a crash mid-upload leaves: the row in `saving` and a temp file.
        assert!(
            strata_image::db::set_status(&s.db.store, &cut, "queued", "saving", 0)
                .await
                .unwrap()
        );
        let tmp = s.images.path().join(format!(".{cut}.0000.tmp"));
        std::fs::write(&tmp, b"part").unwrap();
        // The process starts again over the same database and store.
        let restarted = strata_image::ImageService::new(
            s.db.store.clone(),
            std::sync::Arc::new(s.identity.clone()),
            "http://test",
            std::sync::Arc::new(strata_image::LocalStore::new(s.images.path()).unwrap()),
            MAX_IMAGE,
        );
        restarted.recover().await.unwrap();
        let r = s.get(&format!("/image/v2/images/{cut}"), &s.u1).await;
        assert_eq!(r.json["status"], "killed", "{}: {}", s.label(), r.raw);
        assert!(!tmp.exists(), "temp file swept");
        assert!(
            s.images.path().join(&whole).exists(),
            "complete blobs are kept"
        );
        let r = s.get(&format!("/image/v2/images/{whole}"), &s.u1).await;
        assert_eq!(r.json["status"], "active");
    }
}

/// A local store with `room` bytes left: writes past it fail as a full disk does.
struct FillsUp {
    inner: strata_image::LocalStore,
    room: u64,
}

impl strata_image::ImageStore for FillsUp {
    fn put<'a>(
        &'a self,
        id: &'a str,
        data: strata_image::data::ByteStream,
    ) -> strata_image::data::StoreFuture<'a, u64> {
        use futures::StreamExt;
        let room = self.room;
        let mut seen = 0u64;
        let data = data
            .map(move |c| {
                let c = c?;
                seen += c.len() as u64;
                if seen > room {
                    return Err(std::io::Error::from(std::io::ErrorKind::StorageFull));
                }
                Ok(c)
            })
            .boxed();
        self.inner.put(id, data)
    }
    fn get<'a>(
        &'a self,
        id: &'a str,
        offset: u64,
        len: Option<u64>,
    ) -> strata_image::data::StoreFuture<'a, strata_image::data::ByteStream> {
        self.inner.get(id, offset, len)
    }
    fn delete<'a>(&'a self, id: &'a str) -> strata_image::data::StoreFuture<'a, ()> {
        self.inner.delete(id)
    }
}

#[tokio::test]
async fn a_full_store_kills_the_upload_and_keeps_nothing() {
    use tower::ServiceExt;
    for s in Stack::all().await {
        let full = strata_image::ImageService::new(
            s.db.store.clone(),
            std::sync::Arc::new(s.identity.clone()),
            "http://test",
            std::sync::Arc::new(FillsUp {
                inner: strata_image::LocalStore::new(s.images.path()).unwrap(),
                room: 100_000,
            }),
            MAX_IMAGE,
        );
        let app = strata_api::assemble(vec![("/image", full.router())], 1 << 20);
        let iid = id(&s.image(&s.u1, json!({"disk_format": "raw"})).await);
        let req = http::Request::builder()
            .method(http::Method::PUT)
            .uri(format!("/image/v2/images/{iid}/file"))
            .header("x-auth-token", &s.u1)
            .header("content-type", "application/octet-stream")
            .body(axum::body::Body::from(payload(300_000)))
            .unwrap();
        let r = app.oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE, "{}", s.label());
        let shown = crate::common::poll_status(&s, &iid, "killed").await;
        assert_eq!(shown["size"], json!(null));
        assert!(s.stored_files().is_empty(), "{:?}", s.stored_files());
        // What fits still goes in, on the same store.
        let small = id(&s.image(&s.u1, json!({"disk_format": "raw"})).await);
        let req = http::Request::builder()
            .method(http::Method::PUT)
            .uri(format!("/image/v2/images/{small}/file"))
            .header("x-auth-token", &s.u1)
            .header("content-type", "application/octet-stream")
            .body(axum::body::Body::from(payload(50_000)))
            .unwrap();
        let r = app_for(&full).oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT, "{}", s.label());
    }
}

fn app_for(svc: &strata_image::ImageService) -> axum::Router {
    strata_api::assemble(vec![("/image", svc.router())], 1 << 20)
}
