//! Snapshots, volume types, quotas, limits, availability zones, extensions and services, end
//! to end through the assembled router.

mod common;

use common::*;
use http::StatusCode;
use serde_json::{json, Value};

fn ids(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} in {v}"))
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

async fn snapshot(s: &Stack, token: &str, body: Value) -> Value {
    let r = s
        .post(
            &s.url(token, "/snapshots"),
            token,
            json!({"snapshot": body}),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}: {}", s.label(), r.raw);
    let id = r.json["snapshot"]["id"].as_str().unwrap().to_string();
    s.wait_snapshot(token, &id, "available").await
}

#[tokio::test]
async fn snapshot_lifecycle() {
    for s in Stack::all().await {
        let u1 = s.u1.clone();
        let v = s.volume(&u1, 1).await;
        let vid = v["id"].as_str().unwrap().to_string();

        // Validation.
        let url = s.url(&u1, "/snapshots");
        s.post(&url, &u1, json!({"snapshot": {"name": "x"}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.post(&url, &u1, json!({"snapshot": {"volume_id": null}}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.post(
            &url,
            &u1,
            json!({"snapshot": {"volume_id": uuid::Uuid::new_v4().to_string()}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        // Another project's volume is invisible.
        let u2 = s.u2.clone();
        s.post(
            &s.url(&u2, "/snapshots"),
            &u2,
            json!({"snapshot": {"volume_id": vid}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);

        // Create: the summary view, 202, then available.
        let r = s
            .post(
                &url,
                &u1,
                json!({"snapshot": {"volume_id": vid, "name": "s1", "description": "d",
                    "metadata": {"k": "v"}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let snap = &r.json["snapshot"];
        assert_eq!(snap["status"], "creating");
        assert_eq!(snap["size"], 1);
        assert!(snap
            .get("os-extended-snapshot-attributes:progress")
            .is_none());
        let sid = snap["id"].as_str().unwrap().to_string();
        let shown = s.wait_snapshot(&u1, &sid, "available").await;
        assert_eq!(shown["os-extended-snapshot-attributes:progress"], "100%");
        assert_eq!(
            shown["os-extended-snapshot-attributes:project_id"],
            s.p1.as_str()
        );
        assert_eq!(shown["metadata"], json!({"k": "v"}));
        assert_eq!(shown["name"], "s1");

        // In use: refused without force, taken with it.
        let vid2 = vid.clone();
        strata_volume::work::update_volume(&s.svc, &vid, |v| {
            v.status = "in-use".into();
            Ok(())
        })
        .await
        .unwrap();
        let msg = s
            .post(&url, &u1, json!({"snapshot": {"volume_id": vid2}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert!(msg.starts_with("Invalid volume: "), "{msg}");
        let forced = snapshot(
            &s,
            &u1,
            json!({"volume_id": vid, "force": true, "name": "s2"}),
        )
        .await;
        strata_volume::work::update_volume(&s.svc, &vid, |v| {
            v.status = "available".into();
            Ok(())
        })
        .await
        .unwrap();
        let s3 = snapshot(&s, &u1, json!({"volume_id": vid, "name": "s3"})).await;

        // Lists: sorting, paging, offset, filters; summary and detail.
        let r = s.get(&s.url(&u1, "/snapshots?sort=name:asc"), &u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            ids(&r.json, "snapshots"),
            vec![
                sid.clone(),
                forced["id"].as_str().unwrap().into(),
                s3["id"].as_str().unwrap().into()
            ]
        );
        assert!(r.json["snapshots"][0]
            .get("os-extended-snapshot-attributes:progress")
            .is_none());
        let r = s
            .get(&s.url(&u1, "/snapshots/detail?sort=name:asc&limit=2"), &u1)
            .await;
        assert_eq!(ids(&r.json, "snapshots").len(), 2);
        assert!(r.json["snapshots"][0]
            .get("os-extended-snapshot-attributes:progress")
            .is_some());
        let next = r.json["snapshots_links"][0]["href"].as_str().unwrap();
        assert!(next.contains("marker="), "{next}");
        let r = s
            .get(
                &s.url(&u1, &format!("/snapshots?sort=name:asc&marker={sid}")),
                &u1,
            )
            .await;
        assert_eq!(ids(&r.json, "snapshots").len(), 2);
        let r = s
            .get(
                &s.url(&u1, "/snapshots?sort_key=name&sort_dir=desc&offset=1"),
                &u1,
            )
            .await;
        assert_eq!(
            ids(&r.json, "snapshots"),
            vec![forced["id"].as_str().unwrap().to_string(), sid.clone()]
        );
        let r = s.get(&s.url(&u1, "/snapshots?name=s3"), &u1).await;
        assert_eq!(
            ids(&r.json, "snapshots"),
            vec![s3["id"].as_str().unwrap().to_string()]
        );
        let r = s.get(&s.url(&u1, "/snapshots?status=creating"), &u1).await;
        assert!(ids(&r.json, "snapshots").is_empty());
        s.get(&s.url(&u1, "/snapshots?limit=invalid"), &u1)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.get(&s.url(&u1, "/snapshots?sort_key=invalid"), &u1)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.get(
            &s.url(&u1, &format!("/snapshots?marker={}", uuid::Uuid::new_v4())),
            &u1,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        // Other projects see none; an admin sees all with all_tenants.
        let r = s.get(&s.url(&u2, "/snapshots"), &u2).await;
        assert!(ids(&r.json, "snapshots").is_empty());
        s.get(&s.url(&u2, &format!("/snapshots/{sid}")), &u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let admin = s.admin.clone();
        let r = s
            .get(&s.url(&admin, "/snapshots?all_tenants=1"), &admin)
            .await;
        assert_eq!(ids(&r.json, "snapshots").len(), 3);

        // Update.
        let r = s
            .put(
                &s.url(&u1, &format!("/snapshots/{sid}")),
                &u1,
                json!({"snapshot": {"name": "renamed", "display_description": "dd"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["snapshot"]["name"], "renamed");
        assert_eq!(r.json["snapshot"]["description"], "dd");
        s.put(
            &s.url(&u1, &format!("/snapshots/{sid}")),
            &u1,
            json!({"snapshot": {}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);

        // Metadata.
        let murl = s.url(&u1, &format!("/snapshots/{sid}/metadata"));
        let r = s.post(&murl, &u1, json!({"metadata": {"a": "1"}})).await;
        assert_eq!(r.json["metadata"], json!({"k": "v", "a": "1"}), "{}", r.raw);
        let r = s.put(&murl, &u1, json!({"metadata": {"b": "2"}})).await;
        assert_eq!(r.json["metadata"], json!({"b": "2"}), "{}", r.raw);
        let r = s
            .put(&format!("{murl}/b"), &u1, json!({"meta": {"b": "3"}}))
            .await;
        assert_eq!(r.json, json!({"meta": {"b": "3"}}), "{}", r.raw);
        s.put(&format!("{murl}/b"), &u1, json!({"meta": {"c": "3"}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.put(
            &format!("{murl}/b"),
            &u1,
            json!({"meta": {"b": "3", "c": "4"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        let r = s.get(&format!("{murl}/b"), &u1).await;
        assert_eq!(r.json, json!({"meta": {"b": "3"}}));
        let r = s.delete(&format!("{murl}/b"), &u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        s.get(&format!("{murl}/b"), &u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&format!("{murl}/b"), &u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s.get(&murl, &u1).await;
        assert_eq!(r.json, json!({"metadata": {}}));

        // A volume from the snapshot, then deleting the snapshot leaves the volume whole.
        let nv = s
            .create_volume(&u1, json!({"snapshot_id": sid, "size": 2}))
            .await;
        let nv = s
            .wait_volume(&u1, nv["id"].as_str().unwrap(), "available")
            .await;
        assert_eq!(nv["snapshot_id"], sid.as_str());
        assert_eq!(nv["size"], 2);

        // Admin actions.
        let aurl = s.url(&u1, &format!("/snapshots/{sid}/action"));
        s.post(&aurl, &u1, json!({"os-reset_status": {"status": "error"}}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let adm_aurl = s.url(&admin, &format!("/snapshots/{sid}/action"));
        s.post(
            &adm_aurl,
            &admin,
            json!({"os-reset_status": {"status": "bogus"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .post(
                &adm_aurl,
                &admin,
                json!({"os-reset_status": {"status": "creating"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        // The owner reports progress on a creating snapshot (Nova's assisted snapshots):
        // only to its outcomes.
        s.post(
            &aurl,
            &u1,
            json!({"os-update_snapshot_status": {"status": "deleting"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.post(
            &aurl,
            &u1,
            json!({"os-update_snapshot_status": {"status": "creating", "progress": "lots"}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .post(
                &aurl,
                &u1,
                json!({"os-update_snapshot_status": {"status": "creating", "progress": "80%"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let shown = s.get(&s.url(&u1, &format!("/snapshots/{sid}")), &u1).await;
        assert_eq!(
            shown.json["snapshot"]["os-extended-snapshot-attributes:progress"],
            "80%"
        );
        // Not deletable while creating.
        s.delete(&s.url(&u1, &format!("/snapshots/{sid}")), &u1)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .post(
                &adm_aurl,
                &admin,
                json!({"os-reset_status": {"status": "available"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let r = s
            .delete(&s.url(&u1, &format!("/snapshots/{sid}")), &u1)
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.wait_gone(&u1, &format!("/snapshots/{sid}")).await;
        // Force delete of the in-use copy.
        let fid = forced["id"].as_str().unwrap();
        let r = s
            .post(
                &s.url(&admin, &format!("/snapshots/{fid}/action")),
                &admin,
                json!({"os-force_delete": {}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.svc.idle().await;
        let nv = s
            .wait_volume(&u1, nv["id"].as_str().unwrap(), "available")
            .await;
        assert_eq!(nv["size"], 2);
        let path = s.volume_path(nv["id"].as_str().unwrap()).await;
        assert!(path.exists(), "{}", path.display());
    }
}

#[tokio::test]
async fn types_crud_access_and_policy() {
    for s in Stack::all().await {
        let (admin, u1, u2) = (s.admin.clone(), s.u1.clone(), s.u2.clone());
        let aurl = s.url(&admin, "/types");
        // Default type.
        let r = s.get(&s.url(&u1, "/types/default"), &u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["volume_type"]["name"], "__DEFAULT__");
        let default_id = r.json["volume_type"]["id"].as_str().unwrap().to_string();
        assert!(r.json["volume_type"].get("qos_specs_id").is_none());

        // Non-admins may not write.
        s.post(
            &s.url(&u1, "/types"),
            &u1,
            json!({"volume_type": {"name": "t"}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        s.post(&aurl, &admin, json!({"volume_type": {"name": ""}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        // Create.
        let r = s
            .post(
                &aurl,
                &admin,
                json!({"volume_type": {"name": "gold", "description": "g",
                    "extra_specs": {"multiattach": "<is> True", "secret": "x"}}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let t = r.json["volume_type"].clone();
        assert_eq!(t["os-volume-type-access:is_public"], true);
        assert!(t.get("qos_specs_id").is_none());
        let gold = t["id"].as_str().unwrap().to_string();
        s.post(&aurl, &admin, json!({"volume_type": {"name": "gold"}}))
            .await
            .assert_error(StatusCode::CONFLICT);
        // Admin sees every spec, members only the user-visible ones.
        let r = s
            .get(&s.url(&admin, &format!("/types/{gold}")), &admin)
            .await;
        assert_eq!(r.json["volume_type"]["extra_specs"]["secret"], "x");
        assert!(r.json["volume_type"]["qos_specs_id"].is_null());
        let r = s.get(&s.url(&u1, &format!("/types/{gold}")), &u1).await;
        assert_eq!(
            r.json["volume_type"]["extra_specs"],
            json!({"multiattach": "<is> True"})
        );
        s.get(
            &s.url(&u1, &format!("/types/{gold}/extra_specs/secret")),
            &u1,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);

        // Update.
        let r = s
            .put(
                &s.url(&admin, &format!("/types/{gold}")),
                &admin,
                json!({"volume_type": {"description": "new"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["volume_type"]["description"], "new");
        assert!(r.json["volume_type"]
            .get("os-volume-type-access:is_public")
            .is_none());
        s.put(
            &s.url(&admin, &format!("/types/{gold}")),
            &admin,
            json!({"volume_type": {}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);

        // Extra specs.
        let es = s.url(&admin, &format!("/types/{gold}/extra_specs"));
        let r = s
            .post(&es, &admin, json!({"extra_specs": {"k1": "v1"}}))
            .await;
        assert_eq!(r.json, json!({"extra_specs": {"k1": "v1"}}), "{}", r.raw);
        let r = s
            .put(&format!("{es}/k1"), &admin, json!({"k1": "v2"}))
            .await;
        assert_eq!(r.json, json!({"k1": "v2"}), "{}", r.raw);
        s.put(&format!("{es}/k1"), &admin, json!({"k2": "v2"}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.put(&format!("{es}/k1"), &admin, Value::String("null".into()))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.put(&format!("{es}/k1"), &u1, json!({"k1": "v2"}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.get(&format!("{es}/k1"), &admin).await;
        assert_eq!(r.json, json!({"k1": "v2"}));
        let r = s.delete(&format!("{es}/k1"), &admin).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.delete(&format!("{es}/k1"), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let missing = uuid::Uuid::new_v4();
        s.get(
            &s.url(&admin, &format!("/types/{missing}/extra_specs")),
            &admin,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);

        // Private types and access.
        let r = s
            .post(
                &aurl,
                &admin,
                json!({"volume_type": {"name": "private",
                    "os-volume-type-access:is_public": false}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let private = r.json["volume_type"]["id"].as_str().unwrap().to_string();
        assert_eq!(r.json["volume_type"]["is_public"], false);
        let listed = |r: &Resp| ids(&r.json, "volume_types");
        let r = s.get(&s.url(&u1, "/types"), &u1).await;
        assert!(!listed(&r).contains(&private));
        assert!(listed(&r).contains(&gold));
        s.get(&s.url(&u1, &format!("/types/{private}")), &u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let act = s.url(&admin, &format!("/types/{private}/action"));
        s.post(&act, &u1, json!({"addProjectAccess": {"project": s.p1}}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s
            .post(&act, &admin, json!({"addProjectAccess": {"project": s.p1}}))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.post(&act, &admin, json!({"addProjectAccess": {"project": s.p1}}))
            .await
            .assert_error(StatusCode::CONFLICT);
        let r = s
            .get(
                &s.url(&admin, &format!("/types/{private}/os-volume-type-access")),
                &admin,
            )
            .await;
        assert_eq!(
            r.json,
            json!({"volume_type_access": [{"volume_type_id": private, "project_id": s.p1}]})
        );
        s.get(
            &s.url(&admin, &format!("/types/{gold}/os-volume-type-access")),
            &admin,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        let r = s.get(&s.url(&u1, "/types"), &u1).await;
        assert!(listed(&r).contains(&private));
        let r = s.get(&s.url(&u2, "/types"), &u2).await;
        assert!(!listed(&r).contains(&private));
        let r = s
            .get(&s.url(&admin, "/types?is_public=false"), &admin)
            .await;
        assert_eq!(listed(&r), vec![private.clone()]);
        // A member of p1 may use it now.
        let v = s.volume(&u1, 1).await;
        let _ = v;
        let r = s
            .post(
                &act,
                &admin,
                json!({"removeProjectAccess": {"project": s.p1}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.post(
            &act,
            &admin,
            json!({"removeProjectAccess": {"project": s.p1}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);

        // Delete: refused while in use and for the default type.
        let v = s
            .create_volume(&u1, json!({"size": 1, "volume_type": "gold"}))
            .await;
        let vid = v["id"].as_str().unwrap().to_string();
        s.wait_volume(&u1, &vid, "available").await;
        s.post(&es, &admin, json!({"extra_specs": {"k9": "v"}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.delete(&s.url(&admin, &format!("/types/{gold}")), &admin)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.delete(&s.url(&admin, &format!("/types/{default_id}")), &admin)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.delete(&s.url(&u1, &format!("/types/{private}")), &u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.delete(&s.url(&u1, &format!("/volumes/{vid}")), &u1).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let r = s
            .delete(&s.url(&admin, &format!("/types/{gold}")), &admin)
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.get(&s.url(&admin, &format!("/types/{gold}")), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&s.url(&admin, &format!("/types/{missing}")), &admin)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn quotas_and_limits() {
    for s in Stack::all().await {
        let (admin, u1) = (s.admin.clone(), s.u1.clone());
        let p1 = s.p1.clone();
        let qurl = s.url(&admin, &format!("/os-quota-sets/{p1}"));
        let r = s
            .get(&s.url(&u1, &format!("/os-quota-sets/{p1}")), &u1)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let q = &r.json["quota_set"];
        assert_eq!(q["id"], p1.as_str());
        assert_eq!(q["volumes"], 10);
        assert_eq!(q["per_volume_gigabytes"], -1);
        assert_eq!(q["volumes___DEFAULT__"], -1);
        for k in [
            "snapshots",
            "gigabytes",
            "backups",
            "backup_gigabytes",
            "groups",
        ] {
            assert!(q[k].is_i64(), "{k}: {q}");
        }
        // Other projects' quotas are not for members.
        s.get(&s.url(&u1, &format!("/os-quota-sets/{}", s.p2)), &u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.put(
            &s.url(&u1, &format!("/os-quota-sets/{p1}")),
            &u1,
            json!({"quota_set": {"volumes": 5}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        let r = s
            .get(&s.url(&u1, &format!("/os-quota-sets/{p1}/defaults")), &u1)
            .await;
        assert_eq!(r.json["quota_set"]["volumes"], 10);

        // Validation.
        for bad in [
            json!({"quota_set": {"bogus": 1}}),
            json!({"quota_set": {"volumes": -2}}),
            json!({"quota_set": {"volumes": "x"}}),
            json!({"quota_set": {}}),
            json!({"nope": {}}),
        ] {
            s.put(&qurl, &admin, bad)
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }

        // volumes=1: the second volume is over quota.
        let r = s
            .put(&qurl, &admin, json!({"quota_set": {"volumes": "1"}}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["quota_set"]["volumes"], 1);
        assert!(r.json["quota_set"].get("id").is_none());
        let v = s.volume(&u1, 1).await;
        let r = s
            .post(&s.url(&u1, "/volumes"), &u1, json!({"volume": {"size": 1}}))
            .await;
        r.assert_error(StatusCode::PAYLOAD_TOO_LARGE);
        // Below what is used, now that the override exists: refused.
        s.put(&qurl, &admin, json!({"quota_set": {"volumes": 0}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        // Usage.
        let r = s.get(&format!("{qurl}?usage=true"), &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let q = &r.json["quota_set"];
        assert_eq!(
            q["volumes"],
            json!({"limit": 1, "in_use": 1, "reserved": 0, "allocated": 0})
        );
        assert_eq!(q["gigabytes"]["in_use"], 1);
        assert_eq!(q["volumes___DEFAULT__"]["in_use"], 1);

        // Gigabytes, snapshots count against it too.
        let r = s
            .put(
                &qurl,
                &admin,
                json!({"quota_set": {"volumes": 5, "gigabytes": 2}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        s.post(&s.url(&u1, "/volumes"), &u1, json!({"volume": {"size": 2}}))
            .await
            .assert_error(StatusCode::PAYLOAD_TOO_LARGE);
        let vid = v["id"].as_str().unwrap();
        let r = s
            .post(
                &s.url(&u1, "/snapshots"),
                &u1,
                json!({"snapshot": {"volume_id": vid}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        s.post(
            &s.url(&u1, "/snapshots"),
            &u1,
            json!({"snapshot": {"volume_id": vid}}),
        )
        .await
        .assert_error(StatusCode::PAYLOAD_TOO_LARGE);

        // Limits.
        let r = s.get(&s.url(&u1, "/limits"), &u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let a = &r.json["limits"]["absolute"];
        assert_eq!(r.json["limits"]["rate"], json!([]));
        assert_eq!(a["maxTotalVolumes"], 5);
        assert_eq!(a["maxTotalVolumeGigabytes"], 2);
        assert_eq!(a["totalVolumesUsed"], 1);
        assert_eq!(a["totalSnapshotsUsed"], 1);
        assert_eq!(a["totalGigabytesUsed"], 2);
        assert_eq!(a.as_object().unwrap().len(), 10);

        // Delete: back to the defaults.
        let r = s.delete(&qurl, &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let r = s.get(&qurl, &admin).await;
        assert_eq!(r.json["quota_set"]["volumes"], 10);
        s.delete(&s.url(&u1, &format!("/os-quota-sets/{p1}")), &u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);

        // Quota classes: readable, not writable.
        let r = s
            .get(&s.url(&admin, "/os-quota-class-sets/default"), &admin)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["quota_class_set"]["id"], "default");
        assert_eq!(r.json["quota_class_set"]["volumes"], 10);
        s.put(
            &s.url(&admin, "/os-quota-class-sets/default"),
            &admin,
            json!({"quota_class_set": {"volumes": 11}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.svc.idle().await;
    }
}

#[tokio::test]
async fn zones_extensions_services() {
    for s in Stack::all().await {
        let (admin, u1) = (s.admin.clone(), s.u1.clone());
        let r = s.get(&s.url(&u1, "/os-availability-zone"), &u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            r.json,
            json!({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": true}}]})
        );
        let r = s.get(&s.url(&u1, "/extensions"), &u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let aliases: Vec<&str> = r.json["extensions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["alias"].as_str().unwrap())
            .collect();
        for a in [
            "os-types-manage",
            "os-quota-sets",
            "os-volume-type-access",
            "os-services",
        ] {
            assert!(aliases.contains(&a), "{a}: {aliases:?}");
        }
        for e in r.json["extensions"].as_array().unwrap() {
            assert_eq!(e["links"], json!([]));
            assert_eq!(e.as_object().unwrap().len(), 5, "{e}");
        }

        s.get(&s.url(&u1, "/os-services"), &u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.get(&s.url(&admin, "/os-services"), &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let svcs = r.json["services"].as_array().unwrap();
        assert_eq!(svcs.len(), 2);
        for sv in svcs {
            assert_eq!(sv["state"], "up");
            assert_eq!(sv["status"], "enabled");
            assert_eq!(sv["zone"], "nova");
            assert!(sv["disabled_reason"].is_null());
            assert!(sv.get("cluster").is_none());
        }
        let r = s
            .get(&s.url(&admin, "/os-services?binary=cinder-volume"), &admin)
            .await;
        let svcs = r.json["services"].as_array().unwrap();
        assert_eq!(svcs.len(), 1);
        assert!(svcs[0]["host"].as_str().unwrap().starts_with("strata@"));
        let r = s
            .get(&s.url(&admin, "/os-services?host=strata"), &admin)
            .await;
        // Cinder's host filter matches `host` and `host@backend`: both services.
        let mut binaries: Vec<&str> = r.json["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["binary"].as_str().unwrap())
            .collect();
        binaries.sort();
        assert_eq!(binaries, ["cinder-scheduler", "cinder-volume"]);
        let r = s
            .get(&s.url(&admin, "/os-services?host=strata@local"), &admin)
            .await;
        assert_eq!(r.json["services"][0]["binary"], "cinder-volume");
        assert_eq!(r.json["services"].as_array().unwrap().len(), 1);
        let r = s
            .get(&s.url(&admin, "/os-services?host=stratax"), &admin)
            .await;
        assert_eq!(r.json["services"].as_array().unwrap().len(), 0);
        let r = s
            .get_mv(&s.url(&admin, "/os-services"), &admin, "3.7")
            .await;
        assert!(r.json["services"][0].get("cluster").is_some());
    }
}
