//! `api/volumes.rs` and version discovery, end to end through the assembled router.

mod common;

use common::*;
use http::{Method, StatusCode};
use serde_json::{json, Value};
use strata_volume::model::Volume;

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn version_discovery_and_microversions() {
    for s in Stack::all().await {
        let r = s.call(Method::GET, "/volume", None, &[], None).await;
        assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES, "{}", r.raw);
        assert_eq!(r.json["versions"][0]["id"], "v3.0");
        assert_eq!(r.json["versions"][0]["min_version"], "3.0");
        let max = r.json["versions"][0]["version"]
            .as_str()
            .unwrap()
            .to_string();
        let r = s.call(Method::GET, "/volume/v3/", None, &[], None).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["versions"][0]["version"], max.as_str());
        // The catalog URL (with the project id) answers the same document.
        let p1 = s.p1.clone();
        let r = s
            .call(Method::GET, &format!("/volume/v3/{p1}"), None, &[], None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["versions"][0]["version"], max.as_str());

        let u1 = s.u1.clone();
        let url = s.url(&u1, "/volumes");
        // No header: 3.0 echoed, with Vary.
        let r = s.get(&url, &u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.version(), Some("volume 3.0"));
        assert!(r.headers.get_all("vary").iter().any(|v| v
            .to_str()
            .unwrap()
            .eq_ignore_ascii_case("OpenStack-API-Version")));
        let r = s.get_mv(&url, &u1, "3.27").await;
        assert_eq!(r.version(), Some("volume 3.27"));
        let r = s.get_mv(&url, &u1, "latest").await;
        assert_eq!(r.version(), Some(format!("volume {max}").as_str()));
        // Out of range: 406, still echoing a version.
        let r = s.get_mv(&url, &u1, "3.99").await;
        r.assert_error(StatusCode::NOT_ACCEPTABLE);
        assert!(r.version().is_some());
        let r = s.get_mv(&url, &u1, "3.x").await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // Errors carry the header too.
        let r = s.get_mv(&s.url(&u1, "/volumes/nope"), &u1, "3.10").await;
        r.assert_error(StatusCode::NOT_FOUND);
        assert_eq!(r.version(), Some("volume 3.10"));
        // Summary exists only from 3.12.
        let r = s.get(&s.url(&u1, "/volumes/summary"), &u1).await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = s.get_mv(&s.url(&u1, "/volumes/summary"), &u1, "3.12").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["volume-summary"]["total_count"], 0);
        // No token: Keystone's 401.
        let r = s.call(Method::GET, &url, None, &[], None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.raw);
    }
}

#[tokio::test]
async fn create_blank_is_sparse_and_becomes_available() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        let v = s
            .create_volume(
                &u1,
                json!({"size": 1, "name": "v1", "description": "d",
                "metadata": {"a": "b"}}),
            )
            .await;
        assert_eq!(v["status"], "creating");
        assert_eq!(v["size"], 1);
        assert_eq!(v["name"], "v1");
        assert_eq!(v["description"], "d");
        assert_eq!(v["metadata"], json!({"a": "b"}));
        assert_eq!(v["bootable"], "false");
        assert_eq!(v["volume_type"], "__DEFAULT__");
        assert_eq!(v["availability_zone"], "nova");
        // Cinder's create answers the core view: no extension attributes.
        assert!(v.get("os-vol-tenant-attr:tenant_id").is_none(), "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let v = s.wait_volume(&u1, &id, "available").await;
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["os-vol-tenant-attr:tenant_id"], s.p1.as_str());
        assert!(v.get("os-vol-host-attr:host").is_none(), "admin-only: {v}");
        let path = s.volume_path(&id).await;
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.len(), GIB, "{}", path.display());
        assert!(
            allocated(&path) < 1 << 20,
            "not sparse: {}",
            allocated(&path)
        );
        // The admin sees the host attributes.
        let admin = s.admin.clone();
        let r = s
            .get(
                &format!("/volume/v3/{}/volumes/{id}", s.admin_project),
                &admin,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert!(r.json["volume"]["os-vol-host-attr:host"].is_string());
        // display_name is accepted for name; string sizes too.
        let v = s
            .create_volume(&u1, json!({"size": "2", "display_name": "old"}))
            .await;
        assert_eq!(v["name"], "old");
        assert_eq!(v["size"], 2);
        s.svc.idle().await;
    }
}

#[tokio::test]
async fn create_refusals() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        let url = s.url(&u1, "/volumes");
        for size in [json!(0), json!(-1), json!("abc"), json!(1.5), json!(null)] {
            let r = s.post(&url, &u1, json!({"volume": {"size": size}})).await;
            r.assert_error(StatusCode::BAD_REQUEST);
        }
        let r = s.post(&url, &u1, json!({"volume": {"name": "x"}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s.post(&url, &u1, json!({"volumes": {"size": 1}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s.post(&url, &u1, json!("{not json")).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .post(
                &url,
                &u1,
                json!({"volume": {"size": 1, "volume_type": "nope"}}),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        let missing = "0b8bd1d6-7c6f-4f0a-9d5f-4a4a1f3c2b10";
        let r = s
            .post(
                &url,
                &u1,
                json!({"volume": {"size": 1, "snapshot_id": missing}}),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = s
            .post(
                &url,
                &u1,
                json!({"volume": {"size": 1, "source_volid": missing}}),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = s
            .post(
                &url,
                &u1,
                json!({"volume": {"size": 1, "imageRef": missing}}),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = s
            .post(
                &url,
                &u1,
                json!({"volume": {"size": 1, "availability_zone": "elsewhere"}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .post(
                &url,
                &u1,
                json!({"volume": {"size": 1, "metadata": {"k": 1}}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .post(
                &url,
                &u1,
                json!({"volume": {"size": 1, "name": "n".repeat(256)}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // A reader may not create.
        let reader = s.reader.clone();
        let r = s.post(&url, &reader, json!({"volume": {"size": 1}})).await;
        r.assert_error(StatusCode::FORBIDDEN);
        // Nothing was created.
        let r = s.get(&url, &u1).await;
        assert_eq!(ids(&r.json, "volumes"), Vec::<String>::new());
    }
}

#[tokio::test]
async fn create_from_image_and_clone() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        // A qcow2 of 64 MiB virtual size.
        let qcow = qcow2_image(64 << 20);
        let img = s
            .image_with(
                &u1,
                json!({"name": "q", "disk_format": "qcow2", "container_format": "bare",
                    "os_distro": "cirros"}),
                &qcow,
            )
            .await;
        let v = s
            .create_volume(&u1, json!({"size": 1, "imageRef": img}))
            .await;
        assert_eq!(v["bootable"], "true");
        let id = v["id"].as_str().unwrap().to_string();
        let v = s.wait_volume(&u1, &id, "available").await;
        assert_eq!(v["bootable"], "true");
        let meta = &v["volume_image_metadata"];
        assert_eq!(meta["image_id"], img.as_str());
        assert_eq!(meta["image_name"], "q");
        assert_eq!(meta["disk_format"], "qcow2");
        assert_eq!(meta["os_distro"], "cirros");
        let path = s.volume_path(&id).await;
        assert_eq!(std::fs::metadata(&path).unwrap().len(), GIB);

        // Raw bytes: the data lands at the start of the volume.
        let raw: Vec<u8> = (0..65536u32).map(|i| (i % 251) as u8).collect();
        let img2 = s
            .image_with(
                &u1,
                json!({"name": "r", "disk_format": "raw", "container_format": "bare"}),
                &raw,
            )
            .await;
        let v = s
            .create_volume(&u1, json!({"size": 1, "imageRef": img2}))
            .await;
        let rid = v["id"].as_str().unwrap().to_string();
        s.wait_volume(&u1, &rid, "available").await;
        let path = s.volume_path(&rid).await;
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len() as u64, GIB);
        assert_eq!(&data[..raw.len()], &raw[..]);
        assert!(data[raw.len()..raw.len() + 4096].iter().all(|b| *b == 0));
        drop(data);

        // Another project's private image is not found.
        let u2 = s.u2.clone();
        let r = s
            .post(
                &s.url(&u2, "/volumes"),
                &u2,
                json!({"volume": {"size": 1, "imageRef": img2}}),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);

        // Clone the raw-image volume: same data, bootable and image metadata carried over.
        let c = s
            .create_volume(&u1, json!({"size": 2, "source_volid": rid}))
            .await;
        assert_eq!(c["source_volid"], rid.as_str());
        let cid = c["id"].as_str().unwrap().to_string();
        let c = s.wait_volume(&u1, &cid, "available").await;
        assert_eq!(c["size"], 2);
        assert_eq!(c["bootable"], "true");
        assert_eq!(c["volume_image_metadata"]["image_id"], img2.as_str());
        // A clone may not be smaller than its source.
        let r = s
            .post(
                &s.url(&u1, "/volumes"),
                &u1,
                json!({"volume": {"size": 1, "source_volid": cid}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // Another project cannot clone it.
        let r = s
            .post(
                &s.url(&u2, "/volumes"),
                &u2,
                json!({"volume": {"size": 2, "source_volid": rid}}),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        // The clone reads the source's data.
        let out = std::process::Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(s.volume_path(&cid).await)
            .arg(s.data_dir().join("check.raw"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let f = s.data_dir().join("check.raw");
        let mut head = vec![0u8; raw.len()];
        use std::io::Read;
        std::fs::File::open(&f)
            .unwrap()
            .read_exact(&mut head)
            .unwrap();
        assert_eq!(head, raw);
        assert_eq!(std::fs::metadata(&f).unwrap().len(), 2 * GIB);
        std::fs::remove_file(f).unwrap();
        s.svc.idle().await;
    }
}

#[tokio::test]
async fn list_filters_sorting_and_paging() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        let mut made = Vec::new();
        for (i, (name, meta)) in [
            ("alpha", json!({"tier": "gold"})),
            ("beta", json!({"tier": "silver"})),
            ("gamma", json!({"tier": "gold", "x": "y"})),
        ]
        .into_iter()
        .enumerate()
        {
            let v = s
                .create_volume(&u1, json!({"size": i + 1, "name": name, "metadata": meta}))
                .await;
            made.push(v["id"].as_str().unwrap().to_string());
        }
        for id in &made {
            s.wait_volume(&u1, id, "available").await;
        }
        // A volume of another project never shows.
        let u2 = s.u2.clone();
        let other = s.volume(&u2, 1).await;

        let list = |q: &str| s.url(&u1, &format!("/volumes/detail{q}"));
        let r = s.get(&list(""), &u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let all = ids(&r.json, "volumes");
        assert_eq!(all.len(), 3);
        assert!(!all.contains(&other["id"].as_str().unwrap().to_string()));
        // Default order: newest first.
        assert_eq!(all, made.iter().rev().cloned().collect::<Vec<_>>());
        // Summary list: ids, names, links only.
        let r = s.get(&s.url(&u1, "/volumes"), &u1).await;
        let first = &r.json["volumes"][0];
        assert_eq!(
            first
                .as_object()
                .unwrap()
                .keys()
                .cloned()
                .collect::<Vec<_>>(),
            vec!["id", "links", "name"]
        );

        let r = s.get(&list("?name=beta"), &u1).await;
        assert_eq!(ids(&r.json, "volumes"), vec![made[1].clone()]);
        let r = s.get(&list("?status=available"), &u1).await;
        assert_eq!(ids(&r.json, "volumes").len(), 3);
        let r = s.get(&list("?status=error"), &u1).await;
        assert!(ids(&r.json, "volumes").is_empty());
        let r = s
            .get(&list("?metadata=%7B%22tier%22%3A%22gold%22%7D"), &u1)
            .await;
        let mut got = ids(&r.json, "volumes");
        got.sort();
        let mut want = vec![made[0].clone(), made[2].clone()];
        want.sort();
        assert_eq!(got, want);
        // Tempest's Python-dict spelling.
        let r = s
            .get(&list("?metadata=%7B%27x%27%3A+%27y%27%7D"), &u1)
            .await;
        assert_eq!(ids(&r.json, "volumes"), vec![made[2].clone()], "{}", r.raw);
        let r = s.get(&list("?bootable=false"), &u1).await;
        assert_eq!(ids(&r.json, "volumes").len(), 3);
        let r = s.get(&list("?bootable=true"), &u1).await;
        assert!(ids(&r.json, "volumes").is_empty());
        let r = s.get(&list("?availability_zone=nova"), &u1).await;
        assert_eq!(ids(&r.json, "volumes").len(), 3);
        let r = s.get(&list("?availability_zone=other"), &u1).await;
        assert!(ids(&r.json, "volumes").is_empty());

        // Sorting.
        let r = s.get(&list("?sort=name:asc"), &u1).await;
        assert_eq!(ids(&r.json, "volumes"), made);
        let r = s.get(&list("?sort_key=size&sort_dir=desc"), &u1).await;
        assert_eq!(
            ids(&r.json, "volumes"),
            made.iter().rev().cloned().collect::<Vec<_>>()
        );
        let r = s.get(&list("?sort=bogus:asc"), &u1).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s.get(&list("?sort=name:sideways"), &u1).await;
        r.assert_error(StatusCode::BAD_REQUEST);

        // Paging: limit, marker, offset and the next link.
        let r = s.get(&list("?sort=name:asc&limit=2"), &u1).await;
        assert_eq!(ids(&r.json, "volumes"), made[..2].to_vec());
        let next = r.json["volumes_links"][0]["href"].as_str().unwrap();
        assert_eq!(r.json["volumes_links"][0]["rel"], "next");
        assert!(next.contains(&format!("marker={}", made[1])), "{next}");
        assert!(next.starts_with("http://test/volume/v3/"), "{next}");
        let path = next.strip_prefix("http://test").unwrap();
        let r = s.get(path, &u1).await;
        assert_eq!(ids(&r.json, "volumes"), vec![made[2].clone()]);
        assert!(r.json.get("volumes_links").is_none(), "{}", r.raw);
        let r = s
            .get(&list(&format!("?sort=name:asc&marker={}", made[0])), &u1)
            .await;
        assert_eq!(ids(&r.json, "volumes"), made[1..].to_vec());
        let r = s.get(&list("?sort=name:asc&offset=1&limit=1"), &u1).await;
        assert_eq!(ids(&r.json, "volumes"), vec![made[1].clone()]);
        let r = s.get(&list("?marker=nope"), &u1).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s.get(&list("?limit=-1"), &u1).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s.get(&list("?limit=x"), &u1).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // Paging on the summary list too.
        let r = s
            .get(&s.url(&u1, "/volumes?sort=name:asc&limit=1"), &u1)
            .await;
        assert_eq!(ids(&r.json, "volumes"), vec![made[0].clone()]);
        assert!(r.json["volumes_links"][0]["href"]
            .as_str()
            .unwrap()
            .contains("/volumes?"));

        // The admin sees everything with all_tenants, only its own without.
        let admin = s.admin.clone();
        let aurl = format!("/volume/v3/{}/volumes/detail", s.admin_project);
        let r = s.get(&aurl, &admin).await;
        assert!(ids(&r.json, "volumes").is_empty());
        let r = s.get(&format!("{aurl}?all_tenants=1"), &admin).await;
        assert_eq!(ids(&r.json, "volumes").len(), 4);
        let r = s
            .get(&format!("{aurl}?all_tenants=1&project_id={}", s.p2), &admin)
            .await;
        assert_eq!(ids(&r.json, "volumes").len(), 1);
        // A member's all_tenants is ignored.
        let r = s.get(&list("?all_tenants=1"), &u1).await;
        assert_eq!(ids(&r.json, "volumes").len(), 3);
        // with_count (3.45).
        let r = s
            .get_mv(&list("?with_count=true&limit=1"), &u1, "3.45")
            .await;
        assert_eq!(r.json["count"], 3, "{}", r.raw);
        // Summary (3.12).
        let r = s.get_mv(&s.url(&u1, "/volumes/summary"), &u1, "3.36").await;
        assert_eq!(r.json["volume-summary"]["total_count"], 3);
        assert_eq!(r.json["volume-summary"]["total_size"], 6);
        assert!(r.json["volume-summary"]["metadata"]["tier"].is_array());
    }
}

#[tokio::test]
async fn update_metadata_and_delete() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        let v = s.volume(&u1, 1).await;
        let id = v["id"].as_str().unwrap().to_string();
        let vurl = s.url(&u1, &format!("/volumes/{id}"));
        let r = s
            .put(
                &vurl,
                &u1,
                json!({"volume": {"name": "renamed", "description": "desc"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["volume"]["name"], "renamed");
        assert!(r.json["volume"]
            .get("os-vol-tenant-attr:tenant_id")
            .is_none());
        assert_eq!(r.json["volume"]["description"], "desc");
        let r = s
            .put(&vurl, &u1, json!({"volume": {"display_name": "again"}}))
            .await;
        assert_eq!(r.json["volume"]["name"], "again");
        assert_eq!(r.json["volume"]["description"], "desc");
        let r = s.put(&vurl, &u1, json!({"volume": {"name": 5}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let reader = s.reader.clone();
        let r = s
            .put(&vurl, &reader, json!({"volume": {"name": "no"}}))
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        // The reader can see it though.
        let r = s.get(&vurl, &reader).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);

        // Metadata.
        let murl = format!("{vurl}/metadata");
        let r = s
            .post(&murl, &u1, json!({"metadata": {"a": "1", "b": "2"}}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["metadata"], json!({"a": "1", "b": "2"}));
        let r = s.post(&murl, &u1, json!({"metadata": {"c": "3"}})).await;
        assert_eq!(r.json["metadata"], json!({"a": "1", "b": "2", "c": "3"}));
        let r = s.put(&murl, &u1, json!({"metadata": {"z": "9"}})).await;
        assert_eq!(r.json["metadata"], json!({"z": "9"}));
        let r = s.get(&murl, &u1).await;
        assert_eq!(r.json["metadata"], json!({"z": "9"}));
        let r = s
            .put(&format!("{murl}/k"), &u1, json!({"meta": {"k": "v"}}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["meta"], json!({"k": "v"}));
        let r = s.get(&format!("{murl}/k"), &u1).await;
        assert_eq!(r.json["meta"], json!({"k": "v"}));
        let r = s
            .put(&format!("{murl}/k"), &u1, json!({"meta": {"other": "v"}}))
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .put(
                &format!("{murl}/k"),
                &u1,
                json!({"meta": {"k": "v", "j": "w"}}),
            )
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s.post(&murl, &u1, json!({"meta": {"a": "b"}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s.post(&murl, &u1, json!({"metadata": {"a": 1}})).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .post(&murl, &reader, json!({"metadata": {"a": "b"}}))
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = s.delete(&format!("{murl}/k"), &u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let r = s.get(&format!("{murl}/k"), &u1).await;
        r.assert_error(StatusCode::NOT_FOUND);
        let r = s.delete(&format!("{murl}/k"), &u1).await;
        r.assert_error(StatusCode::NOT_FOUND);
        // The show reflects the metadata.
        let r = s.get(&vurl, &u1).await;
        assert_eq!(r.json["volume"]["metadata"], json!({"z": "9"}));
        // An update with metadata replaces it.
        let r = s
            .put(&vurl, &u1, json!({"volume": {"metadata": {"n": "m"}}}))
            .await;
        assert_eq!(r.json["volume"]["metadata"], json!({"n": "m"}));

        // Another tenant sees nothing of it.
        let u2 = s.u2.clone();
        let other = s.url(&u2, &format!("/volumes/{id}"));
        s.get(&other, &u2).await.assert_error(StatusCode::NOT_FOUND);
        s.put(&other, &u2, json!({"volume": {"name": "x"}}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&other, &u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get(&format!("{other}/metadata"), &u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&vurl, &reader)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Delete: 202, the row goes at once and the data once the background step ran.
        let path = s.volume_path(&id).await;
        assert!(path.exists());
        let r = s.delete(&vurl, &u1).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.wait_gone(&u1, &format!("/volumes/{id}")).await;
        s.svc.idle().await;
        assert!(!path.exists(), "{} still there", path.display());
        s.delete(&vurl, &u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // An empty id (`/volumes/`) is no resource, whatever the method.
        let empty = s.url(&u1, "/volumes/");
        s.get(&empty, &u1).await.assert_error(StatusCode::NOT_FOUND);
        s.put(&empty, &u1, json!({"volume": {"name": "x"}}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&empty, &u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // Unknown routes and methods answer in Cinder's format.
        s.get(&s.url(&u1, "/nothing-here"), &u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.call(
            Method::PATCH,
            &s.url(&u1, "/volumes"),
            Some(&u1),
            &[],
            Some(json!({})),
        )
        .await
        .assert_error(StatusCode::METHOD_NOT_ALLOWED);
    }
}

#[tokio::test]
async fn delete_refuses_a_volume_being_created() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        let id = insert_volume(&s, "creating").await;
        let r = s.delete(&s.url(&u1, &format!("/volumes/{id}")), &u1).await;
        r.assert_error(StatusCode::BAD_REQUEST);
    }
}

/// Inserts a volume row of p1 in `status` directly, as a crash would leave it.
async fn insert_volume(s: &Stack, status: &str) -> String {
    let t = strata_volume::db::get_type_by_name(s.svc.store(), "__DEFAULT__")
        .await
        .unwrap()
        .expect("default type");
    let now = strata_core::time::now_micros();
    let v = Volume {
        id: strata_core::ids::uuid(),
        project_id: s.p1.clone(),
        user_id: "someone".into(),
        name: Some("crashed".into()),
        description: None,
        size: 1,
        status: status.into(),
        attach_status: "detached".into(),
        availability_zone: "nova".into(),
        volume_type_id: t.id,
        bootable: false,
        multiattach: false,
        source_volid: None,
        snapshot_id: None,
        image_id: None,
        metadata: Default::default(),
        image_metadata: Default::default(),
        admin_metadata: Default::default(),
        migration_status: None,
        provider_location: None,
        error: None,
        created_at: now,
        updated_at: now,
        launched_at: None,
    };
    let id = v.id.clone();
    s.svc
        .store()
        .write(move |tx| {
            let v = v.clone();
            Box::pin(async move { strata_volume::db::insert_volume(tx, &v).await })
        })
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn recover_fails_interrupted_creates_and_sweeps_strays() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        let kept = s.volume(&u1, 1).await;
        let kept_id = kept["id"].as_str().unwrap().to_string();
        let kept_path = s.volume_path(&kept_id).await;
        let a = insert_volume(&s, "creating").await;
        let b = insert_volume(&s, "downloading").await;
        let extending = insert_volume(&s, "extending").await;
        let reserved = insert_volume(&s, "reserved").await;
        let stray = s.data_dir().join("vol-0123456789abcdef0123456789abcdef");
        std::fs::write(&stray, b"half-written").unwrap();
        let tmp = s
            .data_dir()
            .join("vol-fedcba9876543210fedcba9876543210.tmp");
        std::fs::write(&tmp, b"partial").unwrap();
        s.svc.recover().await.unwrap();
        for id in [&a, &b] {
            let r = s.get(&s.url(&u1, &format!("/volumes/{id}")), &u1).await;
            assert_eq!(r.json["volume"]["status"], "error", "{}", r.raw);
        }
        // An extend cut off goes back to available; a client's reservation stays.
        for (id, want) in [(&extending, "available"), (&reserved, "reserved")] {
            let r = s.get(&s.url(&u1, &format!("/volumes/{id}")), &u1).await;
            assert_eq!(r.json["volume"]["status"], want, "{}", r.raw);
        }
        assert!(!stray.exists(), "stray survived: {:?}", s.volume_files());
        assert!(!tmp.exists(), "temp file survived: {:?}", s.volume_files());
        assert!(kept_path.exists(), "a live volume's data was swept");
        let r = s
            .get(&s.url(&u1, &format!("/volumes/{kept_id}")), &u1)
            .await;
        assert_eq!(r.json["volume"]["status"], "available");
        // The failed ones can be deleted.
        let r = s.delete(&s.url(&u1, &format!("/volumes/{a}")), &u1).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.svc.idle().await;
    }
}
