//! Image members over the real routers, on SQLite and PostgreSQL: the owner shares a `shared`
//! image, the member accepts or rejects it, who sees the image where (show, download, list and
//! its `member_status` filter), and the refusals (non-shared image, non-owner, duplicates,
//! another member's status, bad bodies).

use crate::common::Stack;
use crate::id;
use http::{Method, StatusCode};
use serde_json::{json, Value};

fn members_path(iid: &str) -> String {
    format!("/image/v2/images/{iid}/members")
}

async fn set_status(s: &Stack, iid: &str, member: &str, token: &str, status: &str) -> Value {
    let r = s
        .call(
            Method::PUT,
            &format!("{}/{member}", members_path(iid)),
            Some(token),
            &[],
            Some(json!({ "status": status })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    r.json
}

#[tokio::test]
async fn owner_shares_member_accepts() {
    for s in Stack::all().await {
        let img = s
            .image(
                &s.u1,
                json!({"name": "sh", "disk_format": "raw",
            "container_format": "bare"}),
            )
            .await;
        let iid = id(&img);
        assert_eq!(img["visibility"], "shared");
        // Not a member yet: another project does not see it at all.
        s.get(&format!("/image/v2/images/{iid}"), &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get(&members_path(&iid), &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        let r = s
            .post(&members_path(&iid), &s.u2, json!({"member": s.p2}))
            .await;
        r.assert_error(StatusCode::NOT_FOUND);

        // The owner adds p2: 200 with Glance's member view, pending.
        let r = s
            .post(&members_path(&iid), &s.u1, json!({"member": s.p2}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}: {}", s.label(), r.raw);
        let keys: Vec<&String> = r.json.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "created_at",
                "image_id",
                "member_id",
                "schema",
                "status",
                "updated_at"
            ]
        );
        assert_eq!(r.json["image_id"], iid.as_str());
        assert_eq!(r.json["member_id"], s.p2.as_str());
        assert_eq!(r.json["status"], "pending");
        assert_eq!(r.json["schema"], "/v2/schemas/member");
        // A second time: 409.
        let r = s
            .post(&members_path(&iid), &s.u1, json!({"member": s.p2}))
            .await;
        let msg = r.assert_error(StatusCode::CONFLICT);
        assert!(msg.contains("is duplicated for image"), "{msg}");

        // The member sees the image (show, download) whatever its status, but lists it only
        // once accepted, unless it asks for another member_status.
        let r = s.get(&format!("/image/v2/images/{iid}"), &s.u2).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            s.download(&iid, &s.u2, &[]).await.status,
            StatusCode::NO_CONTENT
        );
        assert!(!s.ids(&s.u2, "").await.contains(&iid));
        assert!(s.ids(&s.u2, "member_status=pending").await.contains(&iid));
        assert!(s
            .ids(&s.u2, "member_status=pending&visibility=shared")
            .await
            .contains(&iid));
        assert!(s.ids(&s.u2, "member_status=all").await.contains(&iid));
        assert!(!s.ids(&s.u2, "member_status=rejected").await.contains(&iid));
        assert!(!s.ids(&s.u2, "visibility=shared").await.contains(&iid));
        let r = s.get("/image/v2/images?member_status=bogus", &s.u2).await;
        r.assert_error(StatusCode::BAD_REQUEST);
        // The reader of p1 (no membership) is the owner's project: it sees it; the owner's
        // listing is unaffected by member_status.
        assert!(s.ids(&s.u1, "member_status=rejected").await.contains(&iid));

        // Members list: the owner sees every member, the member itself.
        let r = s.get(&members_path(&iid), &s.u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["schema"], "/v2/schemas/members");
        assert_eq!(r.json["members"].as_array().unwrap().len(), 1);
        let r = s.get(&members_path(&iid), &s.u2).await;
        assert_eq!(r.json["members"][0]["member_id"], s.p2.as_str());
        let r = s
            .get(&format!("{}/{}", members_path(&iid), s.p2), &s.u2)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["status"], "pending");

        // The owner cannot accept on the member's behalf; the member can.
        let r = s
            .call(
                Method::PUT,
                &format!("{}/{}", members_path(&iid), s.p2),
                Some(&s.u1),
                &[],
                Some(json!({"status": "accepted"})),
            )
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        // A bad status: 400; a missing one: 400.
        for body in [json!({"status": "maybe"}), json!({"state": "accepted"})] {
            let r = s
                .call(
                    Method::PUT,
                    &format!("{}/{}", members_path(&iid), s.p2),
                    Some(&s.u2),
                    &[],
                    Some(body),
                )
                .await;
            r.assert_error(StatusCode::BAD_REQUEST);
        }
        let m = set_status(&s, &iid, &s.p2, &s.u2, "accepted").await;
        assert_eq!(m["status"], "accepted");
        assert!(s.ids(&s.u2, "").await.contains(&iid));
        assert!(s.ids(&s.u2, "visibility=shared").await.contains(&iid));
        assert!(!s.ids(&s.u2, "member_status=pending").await.contains(&iid));
        set_status(&s, &iid, &s.p2, &s.u2, "rejected").await;
        assert!(!s.ids(&s.u2, "").await.contains(&iid));
        assert!(s.ids(&s.u2, "member_status=rejected").await.contains(&iid));
        // Rejected, it is still shown and downloadable, as in Glance.
        assert_eq!(
            s.get(&format!("/image/v2/images/{iid}"), &s.u2)
                .await
                .status,
            StatusCode::OK
        );

        // The member cannot remove itself, nor change the image, nor add members.
        s.delete(&format!("{}/{}", members_path(&iid), s.p2), &s.u2)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.post(&members_path(&iid), &s.u2, json!({"member": "someone"}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        s.patch(
            &format!("/image/v2/images/{iid}"),
            &s.u2,
            json!([{"op": "replace", "path": "/name", "value": "x"}]),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);

        // The owner removes the member: the image disappears for p2.
        let r = s
            .delete(&format!("{}/{}", members_path(&iid), s.p2), &s.u1)
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
        s.get(&format!("/image/v2/images/{iid}"), &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get(&format!("{}/{}", members_path(&iid), s.p2), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&format!("{}/{}", members_path(&iid), s.p2), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn members_refusals_and_cleanup() {
    for s in Stack::all().await {
        // Only shared images have members.
        let private = s.image(&s.u1, json!({"visibility": "private"})).await;
        let pid = id(&private);
        let r = s
            .post(&members_path(&pid), &s.u1, json!({"member": s.p2}))
            .await;
        let msg = r.assert_error(StatusCode::FORBIDDEN);
        assert!(msg.contains("Not allowed to create members"), "{msg}");
        s.get(&members_path(&pid), &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // Bad bodies.
        let img = s.image(&s.u1, json!({})).await;
        let iid = id(&img);
        for body in [
            json!({}),
            json!({"member": ""}),
            json!({"member": 5}),
            json!([1]),
        ] {
            s.post(&members_path(&iid), &s.u1, body)
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        // A reader of the owning project may list but not add.
        s.post(&members_path(&iid), &s.reader, json!({"member": s.p2}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(
            s.get(&members_path(&iid), &s.reader).await.status,
            StatusCode::OK
        );
        // Members of two projects: each member sees only its own membership, and cannot set
        // the other's status (not found for it).
        let other = "some-other-project";
        for m in [s.p2.as_str(), other] {
            let r = s
                .post(&members_path(&iid), &s.u1, json!({"member": m}))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        }
        let r = s.get(&members_path(&iid), &s.u2).await;
        assert_eq!(r.json["members"].as_array().unwrap().len(), 1, "{}", r.raw);
        let r = s
            .call(
                Method::PUT,
                &format!("{}/{other}", members_path(&iid)),
                Some(&s.u2),
                &[],
                Some(json!({"status": "accepted"})),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
        s.get(&format!("{}/{other}", members_path(&iid)), &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // The admin sees and changes everything.
        let r = s.get(&members_path(&iid), &s.admin).await;
        assert_eq!(r.json["members"].as_array().unwrap().len(), 2);
        set_status(&s, &iid, other, &s.admin, "accepted").await;
        // Making the image private: members are kept but no longer grant access.
        let r = s
            .patch(
                &format!("/image/v2/images/{iid}"),
                &s.u1,
                json!([{"op": "replace", "path": "/visibility", "value": "private"}]),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        s.get(&format!("/image/v2/images/{iid}"), &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert!(!s.ids(&s.u2, "member_status=all").await.contains(&iid));
        // Deleting the image deletes its members.
        let r = s.delete(&format!("/image/v2/images/{iid}"), &s.u1).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        assert!(strata_image::db::members::list(&s.db.store, &iid)
            .await
            .unwrap()
            .is_empty());
        // The member schemas.
        let r = s.get("/image/v2/schemas/member", &s.u1).await;
        assert_eq!(r.json["name"], "member");
        assert_eq!(
            r.json["properties"]["status"]["enum"],
            json!(["pending", "accepted", "rejected"])
        );
        let r = s.get("/image/v2/schemas/members", &s.u1).await;
        assert_eq!(r.json["name"], "members");
        assert_eq!(r.json["properties"]["members"]["items"]["name"], "member");
    }
}
