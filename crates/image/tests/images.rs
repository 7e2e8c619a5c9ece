//! Glance v2 image records over the real routers, on SQLite and PostgreSQL: version discovery,
//! create, list (filters, visibility, sorting, paging), show, JSON-patch, delete, tags, schemas,
//! and the bad-input and cross-project cases.

mod common;
#[path = "images/data.rs"]
mod data;
#[path = "images/import.rs"]
mod import;
#[path = "images/members.rs"]
mod members;

use common::{Stack, BODY_LIMIT, PATCH};
use http::{Method, StatusCode};
use serde_json::{json, Value};

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn version_discovery() {
    for s in Stack::all().await {
        for path in ["/image", "/image/", "/image/versions", "/image/nope"] {
            let r = s.call(Method::GET, path, None, &[], None).await;
            assert_eq!(r.status, StatusCode::MULTIPLE_CHOICES, "{path}: {}", r.raw);
            let versions = r.json["versions"].as_array().unwrap();
            assert_eq!(versions[0]["status"], "CURRENT");
            assert!(versions.iter().any(|v| v["id"] == "v2.0"));
            assert!(versions.iter().all(|v| v["links"][0]["rel"] == "self"
                && v["links"][0]["href"] == "http://test/image/v2/"));
        }
        let r = s.get("/image/v2/nope", &s.u1).await;
        r.assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn create_show_and_the_image_view() {
    for s in Stack::all().await {
        let r = s
            .post(
                "/image/v2/images",
                &s.u1,
                json!({"name": "img1", "disk_format": "qcow2", "container_format": "bare",
                       "a": "b", "tags": ["t1", "t2", "t1"], "min_disk": 1, "min_ram": 512}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let img = &r.json;
        let iid = id(img);
        assert!(strata_image::model::is_uuid(&iid), "{iid}");
        assert_eq!(
            r.headers["location"].to_str().unwrap(),
            format!("/v2/images/{iid}")
        );
        for (k, v) in [
            ("name", json!("img1")),
            ("status", json!("queued")),
            ("visibility", json!("shared")),
            ("owner", json!(s.p1)),
            ("protected", json!(false)),
            ("os_hidden", json!(false)),
            ("size", Value::Null),
            ("virtual_size", Value::Null),
            ("checksum", Value::Null),
            ("os_hash_algo", Value::Null),
            ("os_hash_value", Value::Null),
            ("disk_format", json!("qcow2")),
            ("container_format", json!("bare")),
            ("min_disk", json!(1)),
            ("min_ram", json!(512)),
            ("tags", json!(["t1", "t2"])),
            ("a", json!("b")),
            ("self", json!(format!("/v2/images/{iid}"))),
            ("file", json!(format!("/v2/images/{iid}/file"))),
            ("schema", json!("/v2/schemas/image")),
        ] {
            assert_eq!(img[k], v, "{}: {k} in {}", s.label(), r.raw);
        }
        let created = img["created_at"].as_str().unwrap();
        assert_eq!(created.len(), 20, "{created}");
        assert!(created.ends_with('Z') && created.as_bytes()[10] == b'T');
        // Shown the same way; the record went through the change log.
        let shown = s.get(&format!("/image/v2/images/{iid}"), &s.u1).await;
        assert_eq!(shown.status, StatusCode::OK);
        assert_eq!(&shown.json, img);
        let changes = s.db.store.changes_since(0, 10_000).await.unwrap();
        assert!(changes
            .iter()
            .any(|c| c.kind == "image.image" && c.id == iid));

        // A chosen id; a second image with it conflicts. Everything optional: nulls.
        let given = "7b2e4a5c-8b1f-4c36-9d2a-0e5b8f3c1a2d";
        let img = s.image(&s.u1, json!({"id": given})).await;
        assert_eq!(img["id"], given);
        assert_eq!(img["name"], Value::Null);
        assert_eq!(img["disk_format"], Value::Null);
        let r = s
            .post("/image/v2/images", &s.u2, json!({"id": given}))
            .await;
        r.assert_error(StatusCode::CONFLICT);

        // Visibility: community by a member, public only by an admin.
        let c = s
            .image(&s.u1, json!({"name": "c", "visibility": "community"}))
            .await;
        assert_eq!(c["visibility"], "community");
        let r = s
            .post("/image/v2/images", &s.u1, json!({"visibility": "public"}))
            .await;
        let msg = r.assert_error(StatusCode::FORBIDDEN);
        assert!(msg.contains("publicize_image"), "{msg}");
        let p = s
            .image(&s.admin, json!({"visibility": "public", "protected": true}))
            .await;
        assert_eq!(
            (p["visibility"].clone(), p["protected"].clone()),
            (json!("public"), json!(true))
        );
    }
}

#[tokio::test]
async fn create_refuses_bad_input() {
    for s in Stack::all().await {
        let bad: &[(Value, StatusCode, &str)] = &[
            (
                json!({"disk_format": "wrong"}),
                StatusCode::BAD_REQUEST,
                "is not one of",
            ),
            (
                json!({"container_format": "wrong"}),
                StatusCode::BAD_REQUEST,
                "is not one of",
            ),
            (
                json!({"visibility": "everyone"}),
                StatusCode::BAD_REQUEST,
                "is not one of",
            ),
            (
                json!({"protected": "yes"}),
                StatusCode::BAD_REQUEST,
                "boolean",
            ),
            (json!({"min_ram": -1}), StatusCode::BAD_REQUEST, "minimum"),
            (json!({"min_disk": "1"}), StatusCode::BAD_REQUEST, "integer"),
            (
                json!({"name": "n".repeat(256)}),
                StatusCode::BAD_REQUEST,
                "too long",
            ),
            (json!({"tags": "t"}), StatusCode::BAD_REQUEST, "array"),
            (json!({"prop": 5}), StatusCode::BAD_REQUEST, "string"),
            (
                json!({"id": "not-a-uuid"}),
                StatusCode::BAD_REQUEST,
                "pattern",
            ),
            (json!([1]), StatusCode::BAD_REQUEST, "object"),
            (
                json!({"status": "active"}),
                StatusCode::FORBIDDEN,
                "Attribute 'status' is read-only.",
            ),
            (json!({"size": 5}), StatusCode::FORBIDDEN, "read-only"),
            (json!({"checksum": "x"}), StatusCode::FORBIDDEN, "read-only"),
            (
                json!({"created_at": "x"}),
                StatusCode::FORBIDDEN,
                "read-only",
            ),
            (json!({"self": "x"}), StatusCode::FORBIDDEN, "read-only"),
            (json!({"locations": []}), StatusCode::FORBIDDEN, "reserved"),
            (
                json!({"os_glance_import_task": "x"}),
                StatusCode::FORBIDDEN,
                "Attribute 'os_glance_import_task' is reserved.",
            ),
            (
                json!({"owner": "someone-else"}),
                StatusCode::FORBIDDEN,
                "owned by",
            ),
            (
                json!("{not json"),
                StatusCode::BAD_REQUEST,
                "Malformed JSON in request body.",
            ),
            (
                json!(""),
                StatusCode::BAD_REQUEST,
                "Body expected in request.",
            ),
        ];
        for (body, status, want) in bad {
            let r = s.post("/image/v2/images", &s.u1, body.clone()).await;
            let msg = r.assert_error(*status);
            assert!(msg.contains(want), "{}: {body}: {msg}", s.label());
            // webob's body template.
            assert!(msg.contains("<br /><br />\n"), "{msg}");
        }
        // Owner naming the caller's own project is fine; an admin may name any project.
        s.image(&s.u1, json!({"owner": s.p1})).await;
        let img = s.image(&s.admin, json!({"owner": s.p2})).await;
        assert_eq!(img["owner"], json!(s.p2));
        // A reader may not create.
        let r = s.post("/image/v2/images", &s.reader, json!({})).await;
        assert!(r.assert_error(StatusCode::FORBIDDEN).contains("add_image"));
        // Over the body limit.
        let big = json!({"name": "x", "p": "y".repeat(BODY_LIMIT)});
        let r = s.post("/image/v2/images", &s.u1, big).await;
        r.assert_error(StatusCode::PAYLOAD_TOO_LARGE);
        // No token, a bad token: keystonemiddleware's 401.
        for token in [None, Some("garbage")] {
            for (method, path) in [
                (Method::GET, "/image/v2/images"),
                (Method::POST, "/image/v2/images"),
                (
                    Method::GET,
                    "/image/v2/images/7b2e4a5c-8b1f-4c36-9d2a-0e5b8f3c1a2d",
                ),
                (
                    Method::PATCH,
                    "/image/v2/images/7b2e4a5c-8b1f-4c36-9d2a-0e5b8f3c1a2d",
                ),
                (
                    Method::DELETE,
                    "/image/v2/images/7b2e4a5c-8b1f-4c36-9d2a-0e5b8f3c1a2d",
                ),
                (
                    Method::PUT,
                    "/image/v2/images/7b2e4a5c-8b1f-4c36-9d2a-0e5b8f3c1a2d/tags/t",
                ),
                (Method::GET, "/image/v2/schemas/image"),
            ] {
                let r = s.call(method.clone(), path, token, &[], None).await;
                assert_eq!(
                    r.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {path}: {}",
                    r.raw
                );
                assert_eq!(r.json["error"]["code"], 401);
                assert!(r.headers.contains_key("www-authenticate"));
            }
        }
    }
}

#[tokio::test]
async fn visibility_across_projects() {
    for s in Stack::all().await {
        let private = id(&s
            .image(&s.u1, json!({"name": "private", "visibility": "private"}))
            .await);
        let shared = id(&s.image(&s.u1, json!({"name": "shared"})).await);
        let community = id(&s
            .image(&s.u1, json!({"name": "comm", "visibility": "community"}))
            .await);
        let public = id(&s
            .image(&s.admin, json!({"name": "pub", "visibility": "public"}))
            .await);
        let other = id(&s
            .image(&s.u2, json!({"name": "theirs", "visibility": "private"}))
            .await);

        // u2 sees none of p1's private or shared images, even by id; the 404 names the id.
        for iid in [&private, &shared] {
            let r = s.get(&format!("/image/v2/images/{iid}"), &s.u2).await;
            let msg = r.assert_error(StatusCode::NOT_FOUND);
            assert!(
                msg.starts_with(&format!("No image found with ID {iid}")),
                "{msg}"
            );
            for r in [
                s.delete(&format!("/image/v2/images/{iid}"), &s.u2).await,
                s.patch(&format!("/image/v2/images/{iid}"), &s.u2, json!([]))
                    .await,
                s.put(&format!("/image/v2/images/{iid}/tags/x"), &s.u2)
                    .await,
            ] {
                r.assert_error(StatusCode::NOT_FOUND);
            }
        }
        // Community and public images are shown to everyone but changed only by their owner.
        for iid in [&community, &public] {
            assert_eq!(
                s.get(&format!("/image/v2/images/{iid}"), &s.u2)
                    .await
                    .status,
                StatusCode::OK
            );
            let r = s
                .patch(
                    &format!("/image/v2/images/{iid}"),
                    &s.u2,
                    json!([{"op": "replace", "path": "/name", "value": "mine"}]),
                )
                .await;
            assert!(r
                .assert_error(StatusCode::FORBIDDEN)
                .contains("modify_image"));
            s.delete(&format!("/image/v2/images/{iid}"), &s.u2)
                .await
                .assert_error(StatusCode::FORBIDDEN);
        }
        // Default listings: own + public; community only when asked for (the owner sees its
        // own community images by default).
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            sorted(s.ids(&s.u1, "").await),
            sorted(vec![
                private.clone(),
                shared.clone(),
                community.clone(),
                public.clone()
            ])
        );
        assert_eq!(
            sorted(s.ids(&s.u2, "").await),
            sorted(vec![public.clone(), other.clone()])
        );
        assert_eq!(
            s.ids(&s.u2, "visibility=community").await,
            vec![community.clone()]
        );
        assert_eq!(
            s.ids(&s.u2, "visibility=private").await,
            vec![other.clone()]
        );
        assert!(s.ids(&s.u2, "visibility=shared").await.is_empty());
        assert_eq!(
            sorted(s.ids(&s.u2, "visibility=all").await),
            sorted(vec![public.clone(), other.clone(), community.clone()])
        );
        // The admin sees every project's images, community ones when asked.
        let all = s.ids(&s.admin, "").await;
        for iid in [&private, &shared, &public, &other] {
            assert!(all.contains(iid), "{iid}");
        }
        assert!(!all.contains(&community));
        assert_eq!(
            s.ids(&s.admin, "visibility=community").await,
            vec![community.clone()]
        );
        // The reader of p1 sees p1's images but may not change them.
        assert_eq!(
            s.get(&format!("/image/v2/images/{private}"), &s.reader)
                .await
                .status,
            StatusCode::OK
        );
        s.delete(&format!("/image/v2/images/{private}"), &s.reader)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        // Making an image public takes an admin.
        let r = s
            .patch(
                &format!("/image/v2/images/{private}"),
                &s.u1,
                json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
            )
            .await;
        assert!(r
            .assert_error(StatusCode::FORBIDDEN)
            .contains("publicize_image"));
        let r = s
            .patch(
                &format!("/image/v2/images/{private}"),
                &s.admin,
                json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            s.get(&format!("/image/v2/images/{private}"), &s.u2)
                .await
                .status,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn list_filters_sorting_and_paging() {
    for s in Stack::all().await {
        let mut ids = Vec::new();
        for (i, (name, df, tags)) in [
            ("alpha", "qcow2", vec!["x"]),
            ("bravo", "raw", vec!["x", "y"]),
            ("charlie", "qcow2", vec![]),
            ("delta", "iso", vec!["y"]),
            ("echo", "raw", vec![]),
        ]
        .into_iter()
        .enumerate()
        {
            let img = s
                .image(
                    &s.u1,
                    json!({"name": name, "disk_format": df, "container_format": "bare",
                                     "tags": tags, "n": i.to_string()}),
                )
                .await;
            ids.push(id(&img));
        }
        let hidden = id(&s
            .image(&s.u1, json!({"name": "hidden", "os_hidden": true}))
            .await);
        let by_name = |q: &str| {
            let s = &s;
            let q = q.to_string();
            async move {
                let r = s.get(&format!("/image/v2/images?{q}"), &s.u1).await;
                assert_eq!(r.status, StatusCode::OK, "{q}: {}", r.raw);
                r.json["images"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["name"].as_str().unwrap_or("").to_string())
                    .collect::<Vec<_>>()
            }
        };
        // Newest first by default; hidden images only when asked for.
        assert_eq!(
            by_name("").await,
            ["echo", "delta", "charlie", "bravo", "alpha"]
        );
        assert_eq!(s.ids(&s.u1, "os_hidden=true").await, vec![hidden.clone()]);
        assert_eq!(
            by_name("sort_key=name&sort_dir=asc").await,
            ["alpha", "bravo", "charlie", "delta", "echo"]
        );
        assert_eq!(
            by_name("sort=disk_format:asc,name:desc").await,
            ["delta", "charlie", "alpha", "echo", "bravo"]
        );
        assert_eq!(by_name("name=charlie").await, ["charlie"]);
        assert_eq!(
            by_name("name=in:alpha,echo&sort_key=name&sort_dir=asc").await,
            ["alpha", "echo"]
        );
        assert_eq!(by_name("disk_format=raw").await, ["echo", "bravo"]);
        assert_eq!(
            by_name("container_format=bare&disk_format=iso").await,
            ["delta"]
        );
        assert_eq!(by_name("tag=x").await, ["bravo", "alpha"]);
        assert_eq!(by_name("tag=x&tag=y").await, ["bravo"]);
        assert_eq!(
            by_name("status=queued&owner=".to_string().as_str())
                .await
                .len(),
            0
        );
        assert_eq!(by_name(&format!("owner={}", s.p1)).await.len(), 5);
        assert_eq!(by_name("status=active").await.len(), 0);
        assert_eq!(by_name("n=3").await, ["delta"]);
        assert!(
            by_name("size_min=1").await.is_empty(),
            "no image has data yet"
        );
        assert_eq!(
            by_name(&format!("id=in:{},{}", ids[0], ids[4])).await,
            ["echo", "alpha"]
        );
        assert_eq!(by_name("protected=false").await.len(), 5);
        assert_eq!(
            by_name("created_at=gte:2000-01-01T00:00:00Z").await.len(),
            5
        );
        assert!(by_name("created_at=lt:2000-01-01T00:00:00Z")
            .await
            .is_empty());

        // Paging: limit, a next link carrying the other parameters, and the marker.
        let r = s
            .get("/image/v2/images?limit=2&sort_key=name&sort_dir=asc", &s.u1)
            .await;
        assert_eq!(
            r.json["first"],
            "/v2/images?limit=2&sort_key=name&sort_dir=asc"
        );
        assert_eq!(r.json["schema"], "/v2/schemas/images");
        let mut names = Vec::new();
        let mut page = r;
        loop {
            for i in page.json["images"].as_array().unwrap() {
                names.push(i["name"].as_str().unwrap().to_string());
            }
            let Some(next) = page.json["next"].as_str() else {
                break;
            };
            assert!(
                next.starts_with("/v2/images?limit=2&sort_key=name&sort_dir=asc&marker="),
                "{next}"
            );
            page = s.get(&format!("/image{next}"), &s.u1).await;
            assert_eq!(page.status, StatusCode::OK, "{}", page.raw);
        }
        assert_eq!(names, ["alpha", "bravo", "charlie", "delta", "echo"]);
        let r = s.get("/image/v2/images?limit=5", &s.u1).await;
        assert!(r.json["next"].is_string(), "a full page has a next link");
        let r = s.get("/image/v2/images?limit=6", &s.u1).await;
        assert!(r.json.get("next").is_none(), "{}", r.raw);
        assert_eq!(r.json["first"], "/v2/images?limit=6");

        for (q, want) in [
            ("limit=-1", "limit param must be positive"),
            ("limit=x", "limit param must be an integer"),
            (
                "marker=7b2e4a5c-8b1f-4c36-9d2a-0e5b8f3c1a2d",
                "could not be found",
            ),
            ("sort_key=bogus", "Invalid sort key"),
            ("sort_dir=sideways", "Invalid sort direction"),
            ("visibility=bogus", "Invalid visibility value"),
            ("status=bogus", "Invalid status value"),
            ("size_min=big", "nonnumeric"),
            ("created_at=soon:2000-01-01T00:00:00Z", "unknown operator"),
        ] {
            let r = s.get(&format!("/image/v2/images?{q}"), &s.u1).await;
            let msg = r.assert_error(StatusCode::BAD_REQUEST);
            assert!(msg.contains(want), "{q}: {msg}");
        }
        // Another project's private image is no marker for u2.
        let r = s
            .get(&format!("/image/v2/images?marker={}", ids[0]), &s.u2)
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
    }
}

#[tokio::test]
async fn json_patch_update() {
    for s in Stack::all().await {
        let img = s
            .image(&s.u1, json!({"name": "before", "a": "1", "tags": ["t"]}))
            .await;
        let path = format!("/image/v2/images/{}", id(&img));
        let r = s
            .patch(
                &path,
                &s.u1,
                json!([
                    {"op": "replace", "path": "/name", "value": "after"},
                    {"op": "add", "path": "/b", "value": "2"},
                    {"op": "replace", "path": "/a", "value": "one"},
                    {"op": "add", "path": "/tags", "value": ["u", "v"]},
                    {"op": "replace", "path": "/min_ram", "value": 256},
                    {"op": "add", "path": "/disk_format", "value": "raw"},
                    {"op": "add", "path": "/x~1y", "value": "slash"}
                ]),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        for (k, v) in [
            ("name", json!("after")),
            ("a", json!("one")),
            ("b", json!("2")),
            ("tags", json!(["u", "v"])),
            ("min_ram", json!(256)),
            ("disk_format", json!("raw")),
            ("x/y", json!("slash")),
        ] {
            assert_eq!(r.json[k], v, "{k}: {}", r.raw);
        }
        assert_eq!(s.get(&path, &s.u1).await.json, r.json);
        let r = s
            .patch(&path, &s.u1, json!([{"op": "remove", "path": "/b"}]))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert!(r.json.get("b").is_none());
        // The draft-04 spelling Tempest's client sends.
        let r = s
            .call(
                Method::PATCH,
                &path,
                Some(&s.u1),
                &[(
                    "content-type",
                    "application/openstack-images-v2.0-json-patch",
                )],
                Some(json!([{"replace": "/protected", "value": true}])),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["protected"], true);

        let bad: &[(Value, StatusCode, &str)] = &[
            (
                json!([{"op": "remove", "path": "/nope"}]),
                StatusCode::CONFLICT,
                "Property nope does not exist.",
            ),
            (
                json!([{"op": "replace", "path": "/nope", "value": "x"}]),
                StatusCode::CONFLICT,
                "does not exist",
            ),
            (
                json!([{"op": "remove", "path": "/name"}]),
                StatusCode::FORBIDDEN,
                "may not be removed",
            ),
            (
                json!([{"op": "replace", "path": "/status", "value": "active"}]),
                StatusCode::FORBIDDEN,
                "read-only",
            ),
            (
                json!([{"op": "replace", "path": "/id", "value": "x"}]),
                StatusCode::FORBIDDEN,
                "read-only",
            ),
            (
                json!([{"op": "add", "path": "/os_glance_x", "value": "x"}]),
                StatusCode::FORBIDDEN,
                "reserved",
            ),
            (
                json!([{"op": "replace", "path": "/disk_format", "value": "wrong"}]),
                StatusCode::BAD_REQUEST,
                "is not one of",
            ),
            (
                json!([{"op": "add", "path": "/p", "value": 5}]),
                StatusCode::BAD_REQUEST,
                "string",
            ),
            (
                json!([{"op": "move", "path": "/p"}]),
                StatusCode::BAD_REQUEST,
                "Invalid operation",
            ),
            (
                json!([{"op": "add", "path": "/p"}]),
                StatusCode::BAD_REQUEST,
                "requires a member named \"value\"",
            ),
            (
                json!([{"op": "add", "path": "p", "value": "x"}]),
                StatusCode::BAD_REQUEST,
                "does not start with",
            ),
            (
                json!([{"op": "add", "path": "/tags/0", "value": "x"}]),
                StatusCode::BAD_REQUEST,
                "Invalid JSON pointer",
            ),
            (json!({"op": "add"}), StatusCode::BAD_REQUEST, "JSON array"),
            (json!([5]), StatusCode::BAD_REQUEST, "JSON objects"),
            (json!("[{"), StatusCode::BAD_REQUEST, "Malformed JSON"),
        ];
        for (ops, status, want) in bad {
            let r = s.patch(&path, &s.u1, ops.clone()).await;
            let msg = r.assert_error(*status);
            assert!(msg.contains(want), "{ops}: {msg}");
        }
        // Nothing above changed the image.
        assert_eq!(s.get(&path, &s.u1).await.json["name"], "after");
        // Other media types: 415 with Accept-Patch.
        for ct in ["application/json", "application/json-patch+json"] {
            let r = s
                .call(
                    Method::PATCH,
                    &path,
                    Some(&s.u1),
                    &[("content-type", ct)],
                    Some(json!([{"op": "replace", "path": "/name", "value": "z"}])),
                )
                .await;
            r.assert_error(StatusCode::UNSUPPORTED_MEDIA_TYPE);
            assert!(r.headers["accept-patch"].to_str().unwrap().contains(PATCH));
        }
        // Unknown image.
        let r = s
            .patch(
                "/image/v2/images/7b2e4a5c-8b1f-4c36-9d2a-0e5b8f3c1a2d",
                &s.u1,
                json!([]),
            )
            .await;
        r.assert_error(StatusCode::NOT_FOUND);
    }
}

#[tokio::test]
async fn delete_and_protection() {
    for s in Stack::all().await {
        let img = s
            .image(&s.u1, json!({"name": "p", "protected": true}))
            .await;
        let path = format!("/image/v2/images/{}", id(&img));
        let msg = s
            .delete(&path, &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN)
            .to_string();
        assert!(msg.contains("is protected and cannot be deleted"), "{msg}");
        let r = s
            .patch(
                &path,
                &s.u1,
                json!([{"op": "replace", "path": "/protected", "value": false}]),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(s.delete(&path, &s.u1).await.status, StatusCode::NO_CONTENT);
        s.get(&path, &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete(&path, &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // Ids that are not UUIDs and empty ids are 404s, as in Glance.
        s.get("/image/v2/images/not-an-id", &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.get("/image/v2/images/", &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.delete("/image/v2/images/", &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // Actions refuse images without data (queued).
        let img = s.image(&s.u1, json!({})).await;
        let r = s
            .post(
                &format!("/image/v2/images/{}/actions/deactivate", id(&img)),
                &s.admin,
                json!({}),
            )
            .await;
        assert!(r
            .assert_error(StatusCode::FORBIDDEN)
            .contains("status 'queued'"));
    }
}

#[tokio::test]
async fn tags() {
    for s in Stack::all().await {
        let img = s.image(&s.u1, json!({"tags": ["a"]})).await;
        let base = format!("/image/v2/images/{}", id(&img));
        for _ in 0..2 {
            assert_eq!(
                s.put(&format!("{base}/tags/b"), &s.u1).await.status,
                StatusCode::NO_CONTENT
            );
        }
        assert_eq!(s.get(&base, &s.u1).await.json["tags"], json!(["a", "b"]));
        assert_eq!(s.ids(&s.u1, "tag=b").await, vec![id(&img)]);
        assert_eq!(
            s.delete(&format!("{base}/tags/a"), &s.u1).await.status,
            StatusCode::NO_CONTENT
        );
        assert_eq!(s.get(&base, &s.u1).await.json["tags"], json!(["b"]));
        s.delete(&format!("{base}/tags/a"), &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        s.put(
            "/image/v2/images/7b2e4a5c-8b1f-4c36-9d2a-0e5b8f3c1a2d/tags/a",
            &s.u1,
        )
        .await
        .assert_error(StatusCode::NOT_FOUND);
        let long = "t".repeat(256);
        s.put(&format!("{base}/tags/{long}"), &s.u1)
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.put(&format!("{base}/tags/c"), &s.reader)
            .await
            .assert_error(StatusCode::FORBIDDEN);
    }
}

#[tokio::test]
async fn schemas_describe_what_is_served() {
    for s in Stack::all().await {
        let r = s.get("/image/v2/schemas/image", &s.u1).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json["name"], "image");
        assert_eq!(r.json["additionalProperties"]["type"], "string");
        let props = r.json["properties"].as_object().unwrap();
        let img = s.image(&s.u1, json!({})).await;
        for key in img.as_object().unwrap().keys() {
            assert!(
                props.contains_key(key),
                "{key} is served but not in the schema"
            );
        }
        // `stores` is shown only once the image has data (as in multi-store Glance).
        for key in props.keys().filter(|k| *k != "stores") {
            assert!(
                img.get(key).is_some(),
                "{key} is in the schema but not served"
            );
        }
        let formats = props["disk_format"]["enum"].as_array().unwrap();
        assert_eq!(formats.len(), strata_image::model::DISK_FORMATS.len() + 1);
        let r = s.get("/image/v2/schemas/images", &s.u1).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.json["name"], "images");
        assert_eq!(r.json["properties"]["images"]["items"]["name"], "image");
    }
}

#[tokio::test]
async fn other_methods_are_405_with_allow() {
    for s in Stack::all().await {
        for (method, path) in [
            (Method::PUT, "/image/v2/images"),
            (
                Method::POST,
                "/image/v2/images/7b2e4a5c-8b1f-4c36-9d2a-0e5b8f3c1a2d",
            ),
            (
                Method::GET,
                "/image/v2/images/7b2e4a5c-8b1f-4c36-9d2a-0e5b8f3c1a2d/tags/t",
            ),
            (Method::POST, "/image/v2/schemas/image"),
        ] {
            let r = s.call(method.clone(), path, Some(&s.u1), &[], None).await;
            let msg = r.assert_error(StatusCode::METHOD_NOT_ALLOWED);
            assert!(
                msg.starts_with(&format!("The method {method} is not allowed")),
                "{msg}"
            );
            assert!(
                r.headers.contains_key("allow"),
                "{method} {path}: {:?}",
                r.headers
            );
        }
    }
}
