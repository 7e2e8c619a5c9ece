//! Server actions (`POST /servers/{id}/action`) through the API, carried out by in-process
//! node agents on fake hosts: power changes and reboots reach the guest, locks refuse
//! non-admins, rebuild re-creates the guest from the new image, the console log comes from
//! the agent's reports, security groups follow onto the ports; Nova's 400/403/404/409s.

mod common;

use common::{Cloud, Resp, Stack};
use http::{Method, StatusCode};
use serde_json::{json, Value};
use strata_agent::fake_boot_log;
use strata_agent_api::Power;

async fn act(s: &Stack, id: &str, token: &str, body: Value) -> Resp {
    s.post(&format!("/servers/{id}/action"), token, body).await
}

async fn act_mv(s: &Stack, id: &str, token: &str, mv: &str, body: Value) -> Resp {
    s.post_mv(&format!("/servers/{id}/action"), token, mv, body)
        .await
}

/// Asserts a 202 with an empty body.
fn accepted(r: &Resp) {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
    assert!(r.raw.is_empty(), "{}", r.raw);
}

/// Waits for `status` with no task left.
async fn settle(s: &Stack, id: &str, status: &str) -> Resp {
    s.wait_server(id, status, |r| {
        r.json["server"]["status"] == status && r.json["server"]["OS-EXT-STS:task_state"].is_null()
    })
    .await
}

/// The guest's power and boot count on whichever host runs it.
fn guest(cloud: &Cloud, id: &str) -> (Power, u64) {
    cloud
        .hosts
        .iter()
        .find_map(|h| h.guests().get(id).copied())
        .unwrap_or_else(|| panic!("no guest {id}"))
}

/// The names of the server's recorded actions, oldest first, each with its events' results.
async fn actions(s: &Stack, id: &str) -> Vec<(String, Vec<(String, Option<String>)>)> {
    let mut out: Vec<_> = strata_compute::server_db::actions(&s.db.store, id)
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            (
                a.action,
                a.events
                    .into_iter()
                    .map(|e| (e.event, e.result))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    out.reverse();
    out
}

async fn boot_active(s: &Stack, cloud: &Cloud, name: &str) -> String {
    let id = s.boot(cloud, &s.u1, name, json!({})).await;
    settle(s, &id, "ACTIVE").await;
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_actions_and_reboots_reach_the_guest() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "vm1").await;
        assert_eq!(guest(&cloud, &id), (Power::Running, 1), "{}", s.label());

        // Stop, then start.
        accepted(&act(&s, &id, &s.u1, json!({"os-stop": null})).await);
        let r = settle(&s, &id, "SHUTOFF").await;
        assert_eq!(r.json["server"]["OS-EXT-STS:vm_state"], "stopped");
        assert_eq!(r.json["server"]["OS-EXT-STS:power_state"], 4);
        assert_eq!(guest(&cloud, &id).0, Power::Shutdown);
        // Stopped: no second stop, no soft reboot, no pause.
        let m = act(&s, &id, &s.u1, json!({"os-stop": null}))
            .await
            .assert_error(StatusCode::CONFLICT)
            .to_string();
        assert_eq!(
            m,
            format!("Cannot 'stop' instance {id} while it is in vm_state stopped")
        );
        let m = act(&s, &id, &s.u1, json!({"reboot": {"type": "SOFT"}}))
            .await
            .assert_error(StatusCode::CONFLICT)
            .to_string();
        assert_eq!(
            m,
            format!("Cannot 'reboot' instance {id} while it is in vm_state stopped")
        );
        act(&s, &id, &s.u1, json!({"pause": null}))
            .await
            .assert_error(StatusCode::CONFLICT);
        accepted(&act(&s, &id, &s.u1, json!({"os-start": null})).await);
        let r = settle(&s, &id, "ACTIVE").await;
        assert_eq!(r.json["server"]["OS-EXT-STS:power_state"], 1);
        assert_eq!(guest(&cloud, &id), (Power::Running, 2));

        // Wrong states on an active server.
        let m = act(&s, &id, &s.u1, json!({"os-start": null}))
            .await
            .assert_error(StatusCode::CONFLICT)
            .to_string();
        assert_eq!(
            m,
            format!("Cannot 'start' instance {id} while it is in vm_state active")
        );
        let m = act(&s, &id, &s.u1, json!({"unpause": null}))
            .await
            .assert_error(StatusCode::CONFLICT)
            .to_string();
        assert_eq!(
            m,
            format!("Cannot 'unpause' instance {id} while it is in vm_state active")
        );
        act(&s, &id, &s.u1, json!({"resume": null}))
            .await
            .assert_error(StatusCode::CONFLICT);

        // Soft and hard reboots (the type's case as Nova's enum allows it).
        accepted(&act(&s, &id, &s.u1, json!({"reboot": {"type": "soft"}})).await);
        settle(&s, &id, "ACTIVE").await;
        assert_eq!(guest(&cloud, &id), (Power::Running, 3));
        let r = act(&s, &id, &s.u1, json!({"reboot": {"type": "HARD"}})).await;
        accepted(&r);
        let v = s.get(&format!("/servers/{id}"), &s.u1).await;
        assert!(
            matches!(
                v.json["server"]["status"].as_str(),
                Some("HARD_REBOOT") | Some("ACTIVE")
            ),
            "{}",
            v.raw
        );
        settle(&s, &id, "ACTIVE").await;
        assert_eq!(guest(&cloud, &id), (Power::Running, 4));

        // Pause and unpause.
        accepted(&act(&s, &id, &s.u1, json!({"pause": null})).await);
        let r = settle(&s, &id, "PAUSED").await;
        assert_eq!(r.json["server"]["OS-EXT-STS:power_state"], 3);
        assert_eq!(guest(&cloud, &id).0, Power::Paused);
        act(&s, &id, &s.u1, json!({"pause": null}))
            .await
            .assert_error(StatusCode::CONFLICT);
        accepted(&act(&s, &id, &s.u1, json!({"unpause": null})).await);
        settle(&s, &id, "ACTIVE").await;
        assert_eq!(guest(&cloud, &id).0, Power::Running);

        // Suspend and resume.
        accepted(&act(&s, &id, &s.u1, json!({"suspend": null})).await);
        let r = settle(&s, &id, "SUSPENDED").await;
        assert_eq!(r.json["server"]["OS-EXT-STS:power_state"], 7);
        assert_eq!(guest(&cloud, &id).0, Power::Suspended);
        accepted(&act(&s, &id, &s.u1, json!({"resume": null})).await);
        settle(&s, &id, "ACTIVE").await;
        assert_eq!(guest(&cloud, &id).0, Power::Running);

        // A hard reboot also starts a stopped server.
        accepted(&act(&s, &id, &s.u1, json!({"os-stop": null})).await);
        settle(&s, &id, "SHUTOFF").await;
        accepted(&act(&s, &id, &s.u1, json!({"reboot": {"type": "Hard"}})).await);
        settle(&s, &id, "ACTIVE").await;
        assert_eq!(guest(&cloud, &id).0, Power::Running);

        // Every action was recorded under Nova's names, and finished.
        let names: Vec<(String, String)> = actions(&s, &id)
            .await
            .into_iter()
            .map(|(a, ev)| {
                assert!(
                    ev.iter().all(|(_, r)| r.as_deref() == Some("Success")),
                    "{a}: {ev:?}"
                );
                (a, ev[0].0.clone())
            })
            .collect();
        let want = [
            ("create", "compute__do_build_and_run_instance"),
            ("stop", "compute_stop_instance"),
            ("start", "compute_start_instance"),
            ("reboot", "compute_reboot_instance"),
            ("reboot", "compute_reboot_instance"),
            ("pause", "compute_pause_instance"),
            ("unpause", "compute_unpause_instance"),
            ("suspend", "compute_suspend_instance"),
            ("resume", "compute_resume_instance"),
            ("stop", "compute_stop_instance"),
            ("reboot", "compute_reboot_instance"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, e)| (a.to_string(), e.to_string()))
            .collect();
        assert_eq!(names, want, "{}", s.label());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_refuse_non_admins_and_admin_locks_need_an_admin_to_unlock() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "locked").await;
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.73",
            json!({"lock": {"locked_reason": "maintenance"}}),
        )
        .await;
        accepted(&r);
        let v = s.get_mv(&format!("/servers/{id}"), &s.u1, "2.73").await;
        assert_eq!(v.json["server"]["locked"], true, "{}", s.label());
        assert_eq!(v.json["server"]["locked_reason"], "maintenance");
        // The owner's project (another member too) is refused; so is delete.
        let locked = format!("Instance {id} is locked");
        for body in [
            json!({"os-stop": null}),
            json!({"reboot": {"type": "HARD"}}),
            json!({"pause": null}),
            json!({"suspend": null}),
            json!({"rebuild": {"imageRef": cloud.image}}),
            json!({"changePassword": {"adminPass": "pw"}}),
        ] {
            let r = act(&s, &id, &s.u1b, body.clone()).await;
            assert_eq!(r.assert_error(StatusCode::CONFLICT), locked, "{body}");
        }
        assert_eq!(
            s.delete(&format!("/servers/{id}"), &s.u1)
                .await
                .assert_error(StatusCode::CONFLICT),
            locked
        );
        // An admin still acts on it.
        accepted(&act(&s, &id, &s.admin, json!({"os-stop": null})).await);
        settle(&s, &id, "SHUTOFF").await;
        accepted(&act(&s, &id, &s.admin, json!({"os-start": null})).await);
        settle(&s, &id, "ACTIVE").await;
        // The owner unlocks its own lock.
        accepted(&act(&s, &id, &s.u1, json!({"unlock": null})).await);
        let v = s.get_mv(&format!("/servers/{id}"), &s.u1, "2.73").await;
        assert_eq!(v.json["server"]["locked"], false);
        assert!(v.json["server"]["locked_reason"].is_null());
        // An admin's lock: the owner may not unlock it; the admin may.
        accepted(&act(&s, &id, &s.admin, json!({"lock": null})).await);
        let m = act(&s, &id, &s.u1, json!({"unlock": null}))
            .await
            .assert_error(StatusCode::FORBIDDEN)
            .to_string();
        assert_eq!(
            m,
            "Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be \
             performed."
        );
        // The owner locking it again changes nothing; it stays the admin's.
        accepted(&act(&s, &id, &s.u1, json!({"lock": null})).await);
        act(&s, &id, &s.u1, json!({"unlock": null}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        accepted(&act(&s, &id, &s.admin, json!({"unlock": null})).await);
        accepted(&act(&s, &id, &s.u1, json!({"os-stop": null})).await);
        settle(&s, &id, "SHUTOFF").await;
        // The lock schema from 2.73.
        act_mv(
            &s,
            &id,
            &s.u1,
            "2.73",
            json!({"lock": {"locked_reason": ""}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        act_mv(&s, &id, &s.u1, "2.73", json!({"lock": {"why": "x"}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        act_mv(
            &s,
            &id,
            &s.u1,
            "2.73",
            json!({"lock": {"locked_reason": "x".repeat(256)}}),
        )
        .await
        .assert_error(StatusCode::BAD_REQUEST);
        // Before 2.73 the body is not looked at.
        accepted(&act(&s, &id, &s.u1, json!({"lock": {"why": "x"}})).await);
        let recorded: Vec<String> = actions(&s, &id).await.into_iter().map(|a| a.0).collect();
        assert_eq!(
            recorded.iter().filter(|a| *a == "lock").count(),
            3,
            "{recorded:?}"
        );
        assert_eq!(recorded.iter().filter(|a| *a == "unlock").count(), 2);
        let all = actions(&s, &id).await;
        let lock = all.iter().find(|a| a.0 == "lock").unwrap();
        assert_eq!(
            lock.1,
            vec![("api_lock".to_string(), Some("Success".to_string()))]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_recreates_the_guest_from_the_new_image() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "rb").await;
        accepted(&act(&s, &id, &s.u1, json!({"reboot": {"type": "SOFT"}})).await);
        settle(&s, &id, "ACTIVE").await;
        assert_eq!(guest(&cloud, &id).1, 2, "{}", s.label());
        let img2 = s.upload_image("img2", b"other image bytes").await;
        // Bad requests.
        for body in [
            json!({"rebuild": {}}),
            json!({"rebuild": {"imageRef": "not-a-uuid"}}),
            json!({"rebuild": {"imageRef": img2, "bogus": 1}}),
            json!({"rebuild": {"imageRef": img2, "name": ""}}),
            json!({"rebuild": {"imageRef": img2, "accessIPv4": "1.2.3"}}),
            json!({"rebuild": {"imageRef": img2, "OS-DCF:diskConfig": "x"}}),
            json!({"rebuild": {"imageRef": img2, "description": "d"}}),
            json!({"rebuild": null}),
        ] {
            act(&s, &id, &s.u1, body)
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        let r = act(
            &s,
            &id,
            &s.u1,
            json!({"rebuild": {"imageRef": uuid::Uuid::new_v4().to_string()}}),
        )
        .await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "Cannot find image for rebuild"
        );
        // Rebuild with a new image, name and metadata: 202 with the server and a password.
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.19",
            json!({"rebuild": {"imageRef": img2, "name": "rebuilt", "metadata": {"a": "b"},
                "adminPass": "s3cret", "description": "again"}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        let v = &r.json["server"];
        assert_eq!(v["id"], id.as_str());
        assert_eq!(v["image"]["id"], img2.as_str());
        assert_eq!(v["name"], "rebuilt");
        assert_eq!(v["metadata"], json!({"a": "b"}));
        assert_eq!(v["adminPass"], "s3cret");
        assert_eq!(v["description"], "again");
        assert_eq!(v["status"], "REBUILD");
        // Core view below 2.75: no extended attributes.
        assert!(v.get("OS-EXT-STS:vm_state").is_none(), "{v}");
        let r = settle(&s, &id, "ACTIVE").await;
        assert_eq!(r.json["server"]["image"]["id"], img2.as_str());
        // The guest was destroyed and spawned again: one boot.
        assert_eq!(guest(&cloud, &id), (Power::Running, 1));
        // At 2.75 the answer is the full view; a password is generated when none is given.
        // (The host holds the new guest's spawn so that the rebuild is still running when the
        // next one is refused.)
        cloud.hosts[0].hold_spawns(true);
        let r = act_mv(
            &s,
            &id,
            &s.u1,
            "2.75",
            json!({"rebuild": {"imageRef": cloud.image}}),
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.raw);
        assert_eq!(r.json["server"]["OS-EXT-STS:task_state"], "rebuilding");
        assert_eq!(r.json["server"]["adminPass"].as_str().unwrap().len(), 12);
        // Not while rebuilding.
        act(&s, &id, &s.u1, json!({"rebuild": {"imageRef": img2}}))
            .await
            .assert_error(StatusCode::CONFLICT);
        cloud.hosts[0].hold_spawns(false);
        let r = settle(&s, &id, "ACTIVE").await;
        assert_eq!(r.json["server"]["image"]["id"], cloud.image.as_str());
        let all = actions(&s, &id).await;
        assert_eq!(all.iter().filter(|a| a.0 == "rebuild").count(), 2);
        assert!(all.iter().filter(|a| a.0 == "rebuild").all(|a| a.1
            == vec![(
                "compute_rebuild_instance".to_string(),
                Some("Success".to_string())
            )]));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_output_comes_from_the_agents_reports() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "con").await;
        let name = s.get(&format!("/servers/{id}"), &s.admin).await.json["server"]
            ["OS-EXT-SRV-ATTR:instance_name"]
            .as_str()
            .unwrap()
            .to_string();
        let out = |r: &Resp| {
            assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
            r.json["output"].as_str().unwrap().to_string()
        };
        let r = act(&s, &id, &s.u1, json!({"os-getConsoleOutput": {}})).await;
        assert_eq!(out(&r), fake_boot_log(&name, 1), "{}", s.label());
        // A reboot adds a line, once the agent has reported it.
        accepted(&act(&s, &id, &s.u1, json!({"reboot": {"type": "HARD"}})).await);
        settle(&s, &id, "ACTIVE").await;
        let r = act(
            &s,
            &id,
            &s.u1,
            json!({"os-getConsoleOutput": {"length": null}}),
        )
        .await;
        assert_eq!(out(&r), fake_boot_log(&name, 1) + &fake_boot_log(&name, 2));
        // `length` counts as Nova's `_tail_log` does (the piece after the last newline too).
        let r = act(
            &s,
            &id,
            &s.u1,
            json!({"os-getConsoleOutput": {"length": 2}}),
        )
        .await;
        assert_eq!(out(&r), format!("[fake] {name} boot 2: login:\n"));
        let r = act(
            &s,
            &id,
            &s.u1,
            json!({"os-getConsoleOutput": {"length": "0"}}),
        )
        .await;
        assert_eq!(out(&r), "");
        // Still there when the server is stopped.
        accepted(&act(&s, &id, &s.u1, json!({"os-stop": null})).await);
        settle(&s, &id, "SHUTOFF").await;
        let r = act(&s, &id, &s.u1, json!({"os-getConsoleOutput": {}})).await;
        assert!(out(&r).contains("boot 2"));
        // Bad lengths.
        for l in [json!(-2), json!("ten"), json!(1.5), json!(true)] {
            act(
                &s,
                &id,
                &s.u1,
                json!({"os-getConsoleOutput": {"length": l}}),
            )
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        }
        act(&s, &id, &s.u1, json!({"os-getConsoleOutput": {"lines": 1}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        act(&s, &id, &s.u1, json!({"os-getConsoleOutput": null}))
            .await
            .assert_error(StatusCode::BAD_REQUEST);
        // Another project does not see it.
        act(&s, &id, &s.u2, json!({"os-getConsoleOutput": {}}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
    }
}

async fn create_group(s: &Stack, name: &str) -> String {
    let r = s
        .raw(
            Method::POST,
            "/network/v2.0/security-groups",
            Some(&s.u1),
            &[],
            Some(json!({"security_group": {"name": name}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.raw);
    r.json["security_group"]["id"].as_str().unwrap().to_string()
}

async fn port_groups(s: &Stack, server: &str) -> Vec<String> {
    let r = s
        .raw(
            Method::GET,
            &format!("/network/v2.0/ports?device_id={server}"),
            Some(&s.admin),
            &[],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.raw);
    let ports = r.json["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1, "{}", r.raw);
    ports[0]["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap().to_string())
        .collect()
}

async fn view_groups(s: &Stack, id: &str) -> Vec<String> {
    let mut v: Vec<String> = s.get(&format!("/servers/{id}"), &s.u1).await.json["server"]
        ["security_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_groups_are_added_to_and_removed_from_the_ports() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "sg").await;
        let web = create_group(&s, "web").await;
        let before = port_groups(&s, &id).await;
        assert!(!before.contains(&web), "{}", s.label());
        accepted(&act(&s, &id, &s.u1, json!({"addSecurityGroup": {"name": "web"}})).await);
        let after = port_groups(&s, &id).await;
        assert!(after.contains(&web), "{after:?}");
        assert_eq!(after.len(), before.len() + 1);
        assert_eq!(view_groups(&s, &id).await, vec!["default", "web"]);
        // Unknown groups, bad bodies.
        let m = act(
            &s,
            &id,
            &s.u1,
            json!({"addSecurityGroup": {"name": "nope"}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND)
        .to_string();
        assert_eq!(
            m,
            format!("Security group nope is not found for project {}", s.p1)
        );
        let m = act(&s, &id, &s.u1, json!({"addSecurityGroup": {"name": " "}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert_eq!(m, "Security group name cannot be empty");
        let m = act(&s, &id, &s.u1, json!({"addSecurityGroup": {}}))
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert_eq!(m, "Security group not specified");
        let m = act(&s, &id, &s.u1, json!({"removeSecurityGroup": null}))
            .await
            .assert_error(StatusCode::BAD_REQUEST)
            .to_string();
        assert_eq!(m, "Missing parameter dict");
        // Removal (by id works too); removing it again is a 404.
        accepted(
            &act(
                &s,
                &id,
                &s.u1,
                json!({"removeSecurityGroup": {"name": web}}),
            )
            .await,
        );
        assert_eq!(port_groups(&s, &id).await, before);
        assert_eq!(view_groups(&s, &id).await, vec!["default"]);
        let m = act(
            &s,
            &id,
            &s.u1,
            json!({"removeSecurityGroup": {"name": "web"}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND)
        .to_string();
        assert_eq!(
            m,
            format!("Security group web not associated with the instance {id}")
        );
        // The last one removed: the view has no `security_groups` at all, as Nova's.
        accepted(
            &act(
                &s,
                &id,
                &s.u1,
                json!({"removeSecurityGroup": {"name": "default"}}),
            )
            .await,
        );
        let v = s.get(&format!("/servers/{id}"), &s.u1).await;
        assert!(
            v.json["server"].get("security_groups").is_none(),
            "{}",
            v.raw
        );
        // Another project's caller does not see the server.
        act(&s, &id, &s.u2, json!({"addSecurityGroup": {"name": "web"}}))
            .await
            .assert_error(StatusCode::NOT_FOUND);
        // A server without ports.
        let bare = s.boot(&cloud, &s.u1, "bare", json!({"networks": []})).await;
        settle(&s, &bare, "ACTIVE").await;
        let m = act(
            &s,
            &bare,
            &s.u1,
            json!({"addSecurityGroup": {"name": "web"}}),
        )
        .await
        .assert_error(StatusCode::NOT_FOUND)
        .to_string();
        assert_eq!(
            m,
            format!("instance_id {bare} could not be found as device id on any ports")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_checked_like_novas() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "chk").await;
        // Malformed bodies and unknown actions.
        for body in [
            json!({}),
            json!({"os-stop": null, "os-start": null}),
            json!([]),
            Value::String("{not json".into()),
        ] {
            let r = act(&s, &id, &s.u1, body).await;
            assert_eq!(
                r.assert_error(StatusCode::BAD_REQUEST),
                "Malformed request body",
                "{}",
                s.label()
            );
        }
        let r = act(&s, &id, &s.u1, json!({"fly": {}})).await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "There is no such action: fly"
        );
        // Reboot's schema.
        for body in [
            json!({"reboot": {}}),
            json!({"reboot": {"type": "WARM"}}),
            json!({"reboot": {"type": "sOfT"}}),
            json!({"reboot": {"type": "SOFT", "force": true}}),
            json!({"reboot": null}),
        ] {
            act(&s, &id, &s.u1, body)
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        let r = act(&s, &id, &s.u1, json!({"reboot": {"type": "WARM"}})).await;
        assert_eq!(
            r.assert_error(StatusCode::BAD_REQUEST),
            "Invalid input for field/attribute type. Value: 'WARM'. 'WARM' is not one of \
             ['HARD', 'Hard', 'hard', 'SOFT', 'Soft', 'soft']"
        );
        // changePassword's schema, then the action.
        for body in [
            json!({"changePassword": {}}),
            json!({"changePassword": {"adminPass": 1}}),
            json!({"changePassword": {"adminPass": "x", "y": 1}}),
        ] {
            act(&s, &id, &s.u1, body)
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        accepted(
            &act(
                &s,
                &id,
                &s.u1,
                json!({"changePassword": {"adminPass": "new"}}),
            )
            .await,
        );
        let all = actions(&s, &id).await;
        assert_eq!(
            all.last().unwrap(),
            &(
                "changePassword".to_string(),
                vec![(
                    "compute_set_admin_password".to_string(),
                    Some("Success".to_string())
                )]
            )
        );
        // Unknown servers and other projects' servers: 404; a reader: 403.
        let ghost = uuid::Uuid::new_v4().to_string();
        let r = act(&s, &ghost, &s.u1, json!({"os-stop": null})).await;
        assert_eq!(
            r.assert_error(StatusCode::NOT_FOUND),
            format!("Instance {ghost} could not be found.")
        );
        for body in [
            json!({"os-stop": null}),
            json!({"reboot": {"type": "HARD"}}),
            json!({"lock": null}),
            json!({"rebuild": {"imageRef": cloud.image}}),
        ] {
            act(&s, &id, &s.u2, body)
                .await
                .assert_error(StatusCode::NOT_FOUND);
        }
        let r = act(&s, &id, &s.reader, json!({"os-stop": null})).await;
        assert_eq!(
            r.assert_error(StatusCode::FORBIDDEN),
            "Policy doesn't allow os_compute_api:servers:stop to be performed."
        );
        // The server was not touched by any of it.
        let r = settle(&s, &id, "ACTIVE").await;
        assert_eq!(r.json["server"]["locked"], false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_reset_a_servers_state_and_inject_network_info() {
    for s in Stack::all().await {
        let cloud = s.cloud(1).await;
        let id = boot_active(&s, &cloud, "rs").await;
        // Members may not; bad bodies are refused as Nova's schema refuses them.
        act(&s, &id, &s.u1, json!({"os-resetState": {"state": "error"}}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
        for bad in [
            json!({"os-resetState": {"state": "stopped"}}),
            json!({"os-resetState": {}}),
            json!({"os-resetState": {"state": "error", "x": 1}}),
            json!({"os-resetState": null}),
        ] {
            act(&s, &id, &s.admin, bad)
                .await
                .assert_error(StatusCode::BAD_REQUEST);
        }
        accepted(
            &act(
                &s,
                &id,
                &s.admin,
                json!({"os-resetState": {"state": "error"}}),
            )
            .await,
        );
        let r = s.get(&format!("/servers/{id}"), &s.u1).await;
        assert_eq!(r.json["server"]["status"], "ERROR", "{}", s.label());
        let listed = s.get("/servers?status=ERROR", &s.u1).await;
        assert_eq!(listed.json["servers"][0]["id"], id.as_str());
        let r = s
            .get_mv(&format!("/servers/{id}/os-instance-actions"), &s.u1, "2.1")
            .await;
        assert!(r.raw.contains("\"reset_state\""), "{}", r.raw);
        accepted(
            &act(
                &s,
                &id,
                &s.admin,
                json!({"os-resetState": {"state": "active"}}),
            )
            .await,
        );
        settle(&s, &id, "ACTIVE").await;
        accepted(&act(&s, &id, &s.admin, json!({"injectNetworkInfo": null})).await);
        act(&s, &id, &s.u1, json!({"injectNetworkInfo": null}))
            .await
            .assert_error(StatusCode::FORBIDDEN);
    }
}
