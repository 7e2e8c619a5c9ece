//! Keypairs: import (ssh, x509), generation, listing and paging, per-user ownership, admin
//! `user_id`, name rules per microversion, and the key_pairs quota, on every backend.

mod common;

use common::Stack;
use http::StatusCode;
use serde_json::json;
use strata_compute::ComputeConfig;
use strata_store::testing::TestDb;

/// A public key and its fingerprint as `ssh-keygen -l -E md5 -f key.pub` printed it.
const RSA: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDTJn4Ek6+4wwDcS05kTlYkGmr4oAZ+jviG28mHK\
    0P8pZuOD/J2hmdfMeBZwKGdLI2m3cFWGTWQz3v4ULv5XlsswM/5Tb0vNhwdL6SqXwBJhoyGX8hBGaBiF01K5aT/qSA\
    HFUgThLfPJ8EHdysT+ecUoLOl1dLMNw4nI7gfl6yV1Q== rsa@strata";
const RSA_MD5: &str = "5d:54:fc:28:a2:c5:c4:74:62:b3:6b:6b:07:94:c0:9b";
const ED: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEzik8WjE6D4AOgzvdz57vimSZYNb9xu2KMz0TkxBOED test@strata";
const ED_MD5: &str = "97:7c:94:bd:5a:56:f5:eb:cd:fe:6f:f3:f8:73:b8:9e";
/// A certificate and its SHA-1 as `openssl x509 -noout -fingerprint -sha1` printed it.
const CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUGCdzNHBd3YifqUxTzL6FLfytz7UwCgYIKoZIzj0EAwIw
ETEPMA0GA1UEAwwGc3RyYXRhMB4XDTI2MTEyMTIxMTIyNFoXDTM2MTExODIxMTIy
NFowETEPMA0GA1UEAwwGc3RyYXRhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
0ZMhAD54V1o8mVdzJUPVUoQK6L6VAv1TJdYOX6TMbAfKlfqHWkfRuOMMgd2L+kB/
f1XhmsneVH4PBLfNcOgYtqNTMFEwHQYDVR0OBBYEFMl6FDNXcxQmcCjQgQ/z2t0j
hpJ+MB8GA1UdIwQYMBaAFMl6FDNXcxQmcCjQgQ/z2t0jhpJ+MA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgIugIX7mSovIrqADE6eMlacViaOw8qnAy
aRbuWteoZt4CIQDwCjF2v+h27UKiUUJhweGAEFynzqjDvZYjYUNL8UAUUw==
-----END CERTIFICATE-----
";
const CERT_SHA1: &str = "61:00:80:65:4f:7d:89:45:ac:4e:16:62:80:0c:30:9a:d3:66:43:16";

#[tokio::test]
async fn import_show_list_delete() {
    for s in Stack::all().await {
        // 2.1: 200 on create, no type.
        let r = s
            .post(
                "/os-keypairs",
                &s.u1,
                json!({"keypair": {"name": "rsa", "public_key": RSA}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let k = &r.json["keypair"];
        assert_eq!(k["fingerprint"], RSA_MD5);
        assert_eq!(k["user_id"], s.u1_id.as_str());
        assert_eq!(k["public_key"], RSA);
        assert!(k.get("private_key").is_none());
        assert!(k.get("type").is_none());
        // 2.2: 201, type.
        let r = s
            .post_mv(
                "/os-keypairs",
                &s.u1,
                "2.2",
                json!({"keypair": {"name": "ed", "public_key": ED}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(r.json["keypair"]["fingerprint"], ED_MD5);
        assert_eq!(r.json["keypair"]["type"], "ssh");
        let r = s
            .post_mv(
                "/os-keypairs",
                &s.u1,
                "2.2",
                json!({"keypair": {"name": "cert", "type": "x509", "public_key": CERT}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(r.json["keypair"]["fingerprint"], CERT_SHA1);
        assert_eq!(r.json["keypair"]["type"], "x509");
        assert_eq!(s.changes("compute.keypair").await.len(), 3);

        // Duplicate name: 409.
        let r = s
            .post(
                "/os-keypairs",
                &s.u1,
                json!({"keypair": {"name": "rsa", "public_key": ED}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::CONFLICT),
            "Key pair 'rsa' already exists."
        );
        // Another user may use the same name.
        let r = s
            .post(
                "/os-keypairs",
                &s.u1b,
                json!({"keypair": {"name": "rsa", "public_key": ED}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);

        // List: own keypairs only, sorted by name.
        let r = s.get_mv("/os-keypairs", &s.u1, "2.2").await;
        let names: Vec<&str> = r.json["keypairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["keypair"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["cert", "ed", "rsa"]);
        assert_eq!(r.json["keypairs"][2]["keypair"]["fingerprint"], RSA_MD5);
        assert_eq!(r.json["keypairs"][0]["keypair"]["type"], "x509");
        let r = s.get("/os-keypairs", &s.u1b).await;
        assert_eq!(r.json["keypairs"].as_array().unwrap().len(), 1);
        assert_eq!(r.json["keypairs"][0]["keypair"]["fingerprint"], ED_MD5);

        // Show.
        let r = s.get_mv("/os-keypairs/rsa", &s.u1, "2.2").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let k = &r.json["keypair"];
        assert_eq!(k["fingerprint"], RSA_MD5);
        assert_eq!(k["deleted"], false);
        assert!(k["id"].is_i64());
        assert!(k["created_at"].as_str().unwrap().contains('T'));
        assert_eq!(k["type"], "ssh");

        // Another user's keypair (same project, different user): 404.
        let msg = s
            .get("/os-keypairs/cert", &s.u1b)
            .await
            .assert_error(StatusCode::NOT_FOUND)
            .to_string();
        assert_eq!(msg, format!("Keypair cert not found for user {}", s.u1b_id));
        s.delete("/os-keypairs/cert", &s.u2)
            .await
            .assert_error(StatusCode::NOT_FOUND);

        // Delete: 202 at 2.1, 204 from 2.2.
        assert_eq!(
            s.delete("/os-keypairs/cert", &s.u1).await.status,
            StatusCode::ACCEPTED
        );
        assert_eq!(
            s.delete_mv("/os-keypairs/ed", &s.u1, "2.2").await.status,
            StatusCode::NO_CONTENT
        );
        s.delete("/os-keypairs/ed", &s.u1)
            .await
            .assert_error(StatusCode::NOT_FOUND);
        assert_eq!(
            s.get("/os-keypairs/rsa", &s.u1b).await.json["keypair"]["fingerprint"],
            ED_MD5
        );
    }
}

#[tokio::test]
async fn generated_keypairs() {
    for s in Stack::all().await {
        let r = s
            .post_mv(
                "/os-keypairs",
                &s.u1,
                "2.91",
                json!({"keypair": {"name": "gen"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let k = &r.json["keypair"];
        let private = k["private_key"].as_str().unwrap();
        assert!(
            private.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----"),
            "{private}"
        );
        let public = k["public_key"].as_str().unwrap();
        assert!(public.starts_with("ssh-ed25519 "), "{public}");
        assert_eq!(
            k["fingerprint"].as_str().unwrap(),
            strata_compute::keys::ssh_fingerprint(public).unwrap()
        );
        // The private key is never shown again.
        let r = s.get("/os-keypairs/gen", &s.u1).await;
        assert!(r.json["keypair"].get("private_key").is_none());
        assert_eq!(r.json["keypair"]["public_key"], public);
        // x509 keypairs are generated as self-signed certificates.
        let r = s
            .post_mv(
                "/os-keypairs",
                &s.u1,
                "2.2",
                json!({"keypair": {"name": "cert", "type": "x509"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        let cert = r.json["keypair"]["public_key"].as_str().unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        assert!(r.json["keypair"]["private_key"]
            .as_str()
            .unwrap()
            .contains("PRIVATE KEY"));
        assert_eq!(
            r.json["keypair"]["fingerprint"].as_str().unwrap(),
            strata_compute::keys::x509_fingerprint(cert).unwrap()
        );
        assert_eq!(r.json["keypair"]["type"], "x509");
        // 2.92: public_key is required.
        let r = s
            .post_mv(
                "/os-keypairs",
                &s.u1,
                "2.92",
                json!({"keypair": {"name": "gen2"}}),
            )
            .await;
        let msg = r.assert_error(StatusCode::BAD_REQUEST);
        assert!(msg.contains("'public_key' is a required property"), "{msg}");
    }
}

#[tokio::test]
async fn names_types_and_bad_input() {
    for s in Stack::all().await {
        let cases = vec![
            ("2.1", json!({"keypair": {"name": "a@b", "public_key": ED}})),
            (
                "2.91",
                json!({"keypair": {"name": "a.b", "public_key": ED}}),
            ),
            (
                "2.92",
                json!({"keypair": {"name": "a/b", "public_key": ED}}),
            ),
            ("2.1", json!({"keypair": {"name": "", "public_key": ED}})),
            (
                "2.1",
                json!({"keypair": {"name": " lead", "public_key": ED}}),
            ),
            ("2.1", json!({"keypair": {"name": 5, "public_key": ED}})),
            ("2.1", json!({"keypair": {"public_key": ED}})),
            (
                "2.1",
                json!({"keypair": {"name": "t", "public_key": ED, "type": "ssh"}}),
            ),
            (
                "2.2",
                json!({"keypair": {"name": "t", "public_key": ED, "type": "gpg"}}),
            ),
            (
                "2.9",
                json!({"keypair": {"name": "t", "public_key": ED, "user_id": "x"}}),
            ),
            ("2.1", json!({"keypair": {"name": "t", "public_key": 7}})),
            (
                "2.1",
                json!({"keypair": {"name": "t", "public_key": "ssh-rsa garbage"}}),
            ),
            (
                "2.2",
                json!({"keypair": {"name": "t", "type": "x509", "public_key": ED}}),
            ),
            ("2.1", json!({"keypairs": {}})),
            ("2.1", json!("{broken")),
        ];
        for (mv, body) in cases {
            let r = s.post_mv("/os-keypairs", &s.u1, mv, body.clone()).await;
            r.assert_error(StatusCode::BAD_REQUEST);
        }
        let r = s
            .post(
                "/os-keypairs",
                &s.u1,
                json!({"keypair": {"name": "t", "public_key": "ssh-rsa AAAA"}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "Keypair data is invalid: failed to generate fingerprint"
        );
        // The wider 2.92 names.
        let r = s
            .post_mv(
                "/os-keypairs",
                &s.u1,
                "2.92",
                json!({"keypair": {"name": "me@host.example", "public_key": ED}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert!(s.changes("compute.keypair").await.len() == 1);
    }
}

#[tokio::test]
async fn admins_name_users_from_2_10_and_page_from_2_35() {
    for s in Stack::all().await {
        let body = json!({"keypair": {"name": "foru1", "public_key": ED, "user_id": s.u1_id}});
        // A member naming another user: policy refusal.
        let r = s
            .post_mv("/os-keypairs", &s.u1b, "2.10", body.clone())
            .await;
        r.assert_error(StatusCode::FORBIDDEN);
        let r = s
            .post_mv("/os-keypairs", &s.admin, "2.10", body.clone())
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
        assert_eq!(r.json["keypair"]["user_id"], s.u1_id.as_str());
        // Naming oneself is fine.
        let own = json!({"keypair": {"name": "own", "public_key": ED, "user_id": s.u1_id}});
        assert_eq!(
            s.post_mv("/os-keypairs", &s.u1, "2.10", own).await.status,
            StatusCode::CREATED
        );
        for name in ["k3", "k4"] {
            let r = s
                .post(
                    "/os-keypairs",
                    &s.u1,
                    json!({"keypair": {"name": name, "public_key": RSA}}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        }
        let q = format!("/os-keypairs?user_id={}", s.u1_id);
        let r = s.get_mv(&q, &s.admin, "2.10").await;
        assert_eq!(r.json["keypairs"].as_array().unwrap().len(), 4);
        // Below 2.10 the parameter is ignored.
        let r = s.get_mv(&q, &s.admin, "2.9").await;
        assert_eq!(r.json["keypairs"].as_array().unwrap().len(), 0);
        s.get_mv(&q, &s.u1b, "2.10")
            .await
            .assert_error(StatusCode::FORBIDDEN);
        let r = s
            .get_mv(
                &format!("/os-keypairs/foru1?user_id={}", s.u1_id),
                &s.admin,
                "2.10",
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        // Paging from 2.35.
        let r = s.get_mv("/os-keypairs?limit=2", &s.u1, "2.35").await;
        let names: Vec<&str> = r.json["keypairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["keypair"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["foru1", "k3"]);
        let next = r.json["keypairs_links"][0]["href"].as_str().unwrap();
        assert!(next.contains("marker=k3"), "{next}");
        let r = s
            .get_mv("/os-keypairs?limit=2&marker=k3", &s.u1, "2.35")
            .await;
        let names: Vec<&str> = r.json["keypairs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["keypair"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, vec!["k4", "own"]);
        s.get_mv("/os-keypairs?marker=zzz", &s.u1, "2.35")
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.get_mv("/os-keypairs?bogus=1", &s.u1, "2.75")
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        s.get_mv("/os-keypairs/k3?bogus=1", &s.u1, "2.75")
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        let r = s.get_mv("/os-keypairs?limit=2", &s.u1, "2.34").await;
        assert_eq!(r.json["keypairs"].as_array().unwrap().len(), 4);
        assert!(r.json.get("keypairs_links").is_none());
        // Admin deletes another user's keypair.
        let r = s
            .delete_mv(
                &format!("/os-keypairs/foru1?user_id={}", s.u1_id),
                &s.admin,
                "2.10",
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.raw);
    }
}

#[tokio::test]
async fn key_pairs_quota_is_enforced() {
    let mut dbs = vec![TestDb::sqlite().await];
    if let Some(pg) = TestDb::postgres().await {
        dbs.push(pg);
    }
    for db in dbs {
        let cfg = ComputeConfig {
            quota_key_pairs: 2,
            ..ComputeConfig::default()
        };
        let s = Stack::with_config(db, cfg).await;
        for name in ["a", "b"] {
            let r = s
                .post(
                    "/os-keypairs",
                    &s.u1,
                    json!({"keypair": {"name": name, "public_key": ED}}),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        }
        let r = s
            .post(
                "/os-keypairs",
                &s.u1,
                json!({"keypair": {"name": "c", "public_key": ED}}),
            )
            .await;
        assert_eq!(
            r.assert_error(StatusCode::FORBIDDEN),
            "Quota exceeded, too many key pairs."
        );
        // The quota is per user.
        let r = s
            .post(
                "/os-keypairs",
                &s.u1b,
                json!({"keypair": {"name": "c", "public_key": ED}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        // Raising the project's quota lets u1 add more; racing creates never exceed it.
        let r = s
            .put_mv(
                &format!("/os-quota-sets/{}", s.p1),
                &s.admin,
                "2.1",
                json!({"quota_set": {"key_pairs": 5}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
        let creates = (0..8).map(|i| {
            let body = json!({"keypair": {"name": format!("r{i}"), "public_key": ED}});
            s.post("/os-keypairs", &s.u1, body)
        });
        let results = futures::future::join_all(creates).await;
        let ok = results
            .iter()
            .filter(|r| r.status == StatusCode::OK)
            .count();
        assert_eq!(ok, 3, "{} ok", s.label());
        for r in results.iter().filter(|r| r.status != StatusCode::OK) {
            r.assert_error(StatusCode::FORBIDDEN);
        }
        assert_eq!(
            s.get("/os-keypairs", &s.u1).await.json["keypairs"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
        // Detail shows the user's usage.
        let r = s
            .get(
                &format!("/os-quota-sets/{}/detail?user_id={}", s.p1, s.u1_id),
                &s.u1,
            )
            .await;
        assert_eq!(
            r.json["quota_set"]["key_pairs"],
            json!({"limit": 5, "in_use": 5, "reserved": 0})
        );
    }
}
