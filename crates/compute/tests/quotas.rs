//! Quota sets, quota class sets, limits and availability zones, on every backend.

mod common;

use common::Stack;
use http::StatusCode;
use serde_json::json;

#[tokio::test]
async fn quota_sets_per_microversion() {
    for s in Stack::all().await {
        let path = format!("/os-quota-sets/{}", s.p1);
        let r = s.get(&path, &s.u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let q = &r.json["quota_set"];
        assert_eq!(q["id"], s.p1.as_str());
        assert_eq!(q["instances"], 10);
        assert_eq!(q["cores"], 20);
        assert_eq!(q["ram"], 51200);
        assert_eq!(q["key_pairs"], 100);
        assert_eq!(q["metadata_items"], 128);
        assert_eq!(q["server_groups"], 10);
        assert_eq!(q["server_group_members"], 10);
        assert_eq!(q["injected_files"], 5);
        assert_eq!(q["floating_ips"], 10);
        assert_eq!(q["fixed_ips"], -1);
        let q = s.get_mv(&path, &s.u1, "2.36").await.json["quota_set"].clone();
        assert!(q.get("floating_ips").is_none() && q.get("security_group_rules").is_none());
        assert_eq!(q["injected_files"], 5);
        let q = s.get_mv(&path, &s.u1, "2.57").await.json["quota_set"].clone();
        assert!(q.get("injected_files").is_none() && q.get("injected_file_path_bytes").is_none());
        assert_eq!(q.as_object().unwrap().len(), 8, "{q}");

        // Readers of the project may look; other projects may not.
        assert_eq!(s.get(&path, &s.reader).await.status, StatusCode::OK);
        s.get(&path, &s.u2)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(s.get(&path, &s.admin).await.status, StatusCode::OK);
        s.get_mv(&format!("{path}?foo=1"), &s.u1, "2.75")
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        assert_eq!(
            s.get_mv(&format!("{path}?user_id={}", s.u1_id), &s.u1, "2.75")
                .await
                .status,
            StatusCode::OK
        );
        // Defaults: anyone.
        let r = s
            .get(&format!("/os-quota-sets/{}/defaults", s.p2), &s.u1)
            .await;
        assert_eq!(r.json["quota_set"]["cores"], 20);
        // Detail.
        let r = s.get(&format!("{path}/detail"), &s.u1).await;
        assert_eq!(
            r.json["quota_set"]["cores"],
            json!({"limit": 20, "in_use": 0, "reserved": 0})
        );
    }
}

#[tokio::test]
async fn quota_set_updates() {
    for s in Stack::all().await {
        let path = format!("/os-quota-sets/{}", s.p1);
        let body = json!({"quota_set": {"cores": 50, "instances": "15", "force": true}});
        s.put_mv(&path, &s.u1, "2.1", body.clone())
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.put_mv(&path, &s.admin, "2.1", body).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["quota_set"]["cores"], 50);
        assert_eq!(r.json["quota_set"]["instances"], 15);
        assert!(r.json["quota_set"].get("id").is_none());
        assert_eq!(s.get(&path, &s.u1).await.json["quota_set"]["cores"], 50);
        assert!(!s.changes("compute.quota").await.is_empty());
        // Other projects keep the defaults.
        assert_eq!(
            s.get(&format!("/os-quota-sets/{}", s.p2), &s.u2).await.json["quota_set"]["cores"],
            20
        );
        // A user's limit may not exceed the project's.
        let upath = format!("{path}?user_id={}", s.u1_id);
        let r = s
            .put_mv(&upath, &s.admin, "2.1", json!({"quota_set": {"cores": 60}}))
            .await;
        r.assert_error(StatusCode::BAD_REQUEST);
        let r = s
            .put_mv(&upath, &s.admin, "2.1", json!({"quota_set": {"cores": 8}}))
            .await;
        assert_eq!(r.json["quota_set"]["cores"], 8, "{}", r.raw);
        assert_eq!(s.get(&upath, &s.u1).await.json["quota_set"]["cores"], 8);
        assert_eq!(s.get(&path, &s.u1).await.json["quota_set"]["cores"], 50);

        // Bad input.
        for (mv, bad) in [
            ("2.1", json!({"quota_set": {"cores": -2}})),
            ("2.1", json!({"quota_set": {"cores": "many"}})),
            ("2.1", json!({"quota_set": {"cores": 1.5}})),
            ("2.1", json!({"quota_set": {"bogus": 1}})),
            ("2.36", json!({"quota_set": {"floating_ips": 1}})),
            ("2.57", json!({"quota_set": {"injected_files": 1}})),
            ("2.1", json!({"quota_set": {"force": "sure"}})),
            ("2.1", json!({"quotas": {}})),
        ] {
            let r = s.put_mv(&path, &s.admin, mv, bad.clone()).await;
            r.assert_error(StatusCode::BAD_REQUEST);
        }
        // Below usage without force: refused.
        let r = s
            .post("/os-keypairs", &s.u1, json!({"keypair": {"name": "k"}}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let r = s
            .put_mv(
                &upath,
                &s.admin,
                "2.1",
                json!({"quota_set": {"key_pairs": 0}}),
            )
            .await;
        let msg = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(
            msg.contains("must be greater than or equal to already used"),
            "{msg}"
        );

        // Delete: back to defaults.
        s.delete(&path, &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(s.delete(&path, &s.admin).await.status, StatusCode::ACCEPTED);
        assert_eq!(s.get(&path, &s.u1).await.json["quota_set"]["cores"], 20);
        assert_eq!(s.get(&upath, &s.u1).await.json["quota_set"]["cores"], 20);
    }
}

#[tokio::test]
async fn quota_classes_feed_defaults() {
    for s in Stack::all().await {
        s.get("/os-quota-class-sets/default", &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.get("/os-quota-class-sets/default", &s.admin).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let q = &r.json["quota_class_set"];
        assert_eq!(q["id"], "default");
        assert_eq!(q["cores"], 20);
        assert!(q.get("floating_ips").is_some() && q.get("server_groups").is_none());
        let q = s
            .get_mv("/os-quota-class-sets/default", &s.admin, "2.50")
            .await
            .json["quota_class_set"]
            .clone();
        assert!(q.get("floating_ips").is_none() && q.get("server_groups").is_some());
        let q = s
            .get_mv("/os-quota-class-sets/default", &s.admin, "2.57")
            .await
            .json["quota_class_set"]
            .clone();
        assert!(q.get("injected_files").is_none());

        let r = s
            .put_mv(
                "/os-quota-class-sets/default",
                &s.admin,
                "2.50",
                json!({"quota_class_set": {"cores": 30, "server_groups": 3}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["quota_class_set"]["cores"], 30);
        assert!(r.json["quota_class_set"].get("id").is_none());
        s.put_mv(
            "/os-quota-class-sets/default",
            &s.admin,
            "2.1",
            json!({"quota_class_set": {"server_groups": 3}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        s.put_mv(
            "/os-quota-class-sets/default",
            &s.u1,
            "2.50",
            json!({"quota_class_set": {"cores": 1}}),
        )
        .await
        .assert_error(StatusCode::FORBIDDEN);
        assert!(!s.changes("compute.quota_class").await.is_empty());
        // Every project's defaults and limits follow the class.
        let r = s.get(&format!("/os-quota-sets/{}", s.p2), &s.u2).await;
        assert_eq!(r.json["quota_set"]["cores"], 30);
        assert_eq!(r.json["quota_set"]["server_groups"], 3);
        let r = s
            .get(&format!("/os-quota-sets/{}/defaults", s.p2), &s.u2)
            .await;
        assert_eq!(r.json["quota_set"]["cores"], 30);
        let r = s.get("/limits", &s.u2).await;
        assert_eq!(r.json["limits"]["absolute"]["maxTotalCores"], 30);
    }
}

#[tokio::test]
async fn limits_per_microversion() {
    for s in Stack::all().await {
        let r = s.get("/limits", &s.u1).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(r.json["limits"]["rate"], json!([]));
        let a = &r.json["limits"]["absolute"];
        assert_eq!(a["maxTotalInstances"], 10);
        assert_eq!(a["maxTotalCores"], 20);
        assert_eq!(a["maxTotalRAMSize"], 51200);
        assert_eq!(a["maxTotalKeypairs"], 100);
        assert_eq!(a["maxServerMeta"], 128);
        assert_eq!(a["maxImageMeta"], 128);
        assert_eq!(a["maxPersonality"], 5);
        assert_eq!(a["maxPersonalitySize"], 10240);
        assert_eq!(a["maxServerGroups"], 10);
        assert_eq!(a["maxServerGroupMembers"], 10);
        assert_eq!(a["maxTotalFloatingIps"], 10);
        assert_eq!(a["maxSecurityGroups"], 10);
        assert_eq!(a["maxSecurityGroupRules"], 20);
        for used in [
            "totalRAMUsed",
            "totalCoresUsed",
            "totalInstancesUsed",
            "totalFloatingIpsUsed",
            "totalSecurityGroupsUsed",
            "totalServerGroupsUsed",
        ] {
            assert_eq!(a[used], 0, "{used}");
        }
        let a = s.get_mv("/limits", &s.u1, "2.36").await.json["limits"]["absolute"].clone();
        assert!(
            a.get("maxTotalFloatingIps").is_none() && a.get("totalSecurityGroupsUsed").is_none()
        );
        assert!(a.get("maxImageMeta").is_some());
        let a = s.get_mv("/limits", &s.u1, "2.39").await.json["limits"]["absolute"].clone();
        assert!(a.get("maxImageMeta").is_none() && a.get("maxPersonality").is_some());
        let a = s.get_mv("/limits", &s.u1, "2.57").await.json["limits"]["absolute"].clone();
        assert!(a.get("maxPersonality").is_none() && a.get("maxPersonalitySize").is_none());
        assert_eq!(a.as_object().unwrap().len(), 11, "{a}");

        // Another project's limits: admins only.
        let r = s
            .put_mv(
                &format!("/os-quota-sets/{}", s.p2),
                &s.admin,
                "2.1",
                json!({"quota_set": {"instances": 3}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let r = s
            .get(&format!("/limits?tenant_id={}", s.p2), &s.admin)
            .await;
        assert_eq!(r.json["limits"]["absolute"]["maxTotalInstances"], 3);
        s.get(&format!("/limits?tenant_id={}", s.p2), &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        assert_eq!(
            s.get("/limits", &s.u2).await.json["limits"]["absolute"]["maxTotalInstances"],
            3
        );
    }
}

#[tokio::test]
async fn availability_zones() {
    for s in Stack::all().await {
        let r = s.get("/os-availability-zone", &s.reader).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        assert_eq!(
            r.json,
            json!({"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": true}, "hosts": null}]})
        );
        s.get("/os-availability-zone/detail", &s.u1)
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s.get("/os-availability-zone/detail", &s.admin).await;
        assert_eq!(r.json["availabilityZoneInfo"][0]["hosts"], json!({}));
    }
}
