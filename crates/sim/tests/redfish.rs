//! The simulator's BMCs and control API over real HTTP: a fleet in the test's runtime on
//! ephemeral loopback ports, driven with reqwest as any Redfish client would.

mod common;

use anyhow::{ensure, Context, Result};
use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;
use strata_sim::{BootSource, FleetOptions, PowerState};

/// Who a request says it is.
#[derive(Clone, Copy)]
enum Cred<'a> {
    Anonymous,
    Basic(&'a str, &'a str),
    Token(&'a str),
}

/// The status of a GET of `url` as `cred`.
async fn status_as(http: &reqwest::Client, url: &str, cred: Cred<'_>) -> Result<StatusCode> {
    let req = http.get(url);
    let req = match cred {
        Cred::Anonymous => req,
        Cred::Basic(user, password) => req.basic_auth(user, Some(password)),
        Cred::Token(token) => req.header("X-Auth-Token", token),
    };
    Ok(req.send().await?.status())
}

#[tokio::test]
async fn service_root_answers_without_auth() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let http = client();
    let versions: Value = http
        .get(format!("{}/redfish", sim.base()))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(versions, json!({ "v1": "/redfish/v1/" }));
    for path in ["/redfish/v1/", "/redfish/v1"] {
        let r = Reply::from(http.get(format!("{}{path}", sim.base())).send().await?).await?;
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert_eq!(r.header("OData-Version").as_deref(), Some("4.0"));
        let root = r.body;
        assert_eq!(root["@odata.id"], "/redfish/v1/");
        assert_eq!(root["@odata.type"], "#ServiceRoot.v1_5_0.ServiceRoot");
        assert_eq!(root["Systems"]["@odata.id"], "/redfish/v1/Systems");
        assert_eq!(root["Managers"]["@odata.id"], "/redfish/v1/Managers");
        assert_eq!(root["Chassis"]["@odata.id"], "/redfish/v1/Chassis");
        assert_eq!(
            root["SessionService"]["@odata.id"],
            "/redfish/v1/SessionService"
        );
        assert_eq!(
            root["Links"]["Sessions"]["@odata.id"],
            "/redfish/v1/SessionService/Sessions"
        );
        assert!(root["RedfishVersion"].as_str().unwrap().starts_with("1."));
        uuid::Uuid::parse_str(root["UUID"].as_str().unwrap())?;
        assert_ne!(root["UUID"], sim.host().uuid());
    }
    Ok(())
}

#[tokio::test]
async fn credentials_are_required_and_a_password_fault_changes_them() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let url = format!("{}/redfish/v1/Systems", sim.base());
    let none = Reply::from(sim.http.get(&url).send().await?).await?;
    none.redfish_error(StatusCode::UNAUTHORIZED, "NoValidSession")?;
    assert!(none.header("WWW-Authenticate").is_some());
    let refused = [
        Cred::Basic(USER, "nope"),
        Cred::Basic("root", PASSWORD),
        Cred::Token("bogus"),
    ];
    for cred in refused {
        assert_eq!(
            status_as(&sim.http, &url, cred).await?,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        sim.get("/redfish/v1/Systems").await?["Members@odata.count"],
        1
    );
    // Unknown paths are not revealed without credentials either.
    let probe = format!("{}/redfish/v1/Nope", sim.base());
    assert_eq!(
        status_as(&sim.http, &probe, Cred::Anonymous).await?,
        StatusCode::UNAUTHORIZED
    );

    sim.set_faults(|f| f.password = Some("rotated".into()));
    let (old, new) = (Cred::Basic(USER, PASSWORD), Cred::Basic(USER, "rotated"));
    assert_eq!(
        status_as(&sim.http, &url, old).await?,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_as(&sim.http, &url, new).await?, StatusCode::OK);
    // The other host keeps the fleet's password.
    let other = &sim.fleet.hosts()[1];
    let url1 = format!("{}/redfish/v1/Systems", other.bmc().unwrap().base_url);
    assert_eq!(status_as(&sim.http, &url1, old).await?, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn sessions_log_in_and_out() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let sessions = format!("{}/redfish/v1/SessionService/Sessions", sim.base());
    let login = |user: &str, password: &str| {
        sim.http
            .post(&sessions)
            .json(&json!({ "UserName": user, "Password": password }))
            .send()
    };
    Reply::from(login(USER, "wrong").await?)
        .await?
        .redfish_error(StatusCode::UNAUTHORIZED, "ResourceAtUriUnauthorized")?;
    let missing = sim
        .http
        .post(&sessions)
        .json(&json!({ "UserName": USER }))
        .send()
        .await?;
    Reply::from(missing)
        .await?
        .redfish_error(StatusCode::BAD_REQUEST, "PropertyMissing")?;

    let created = Reply::from(login(USER, PASSWORD).await?).await?;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = created.header("X-Auth-Token").context("X-Auth-Token")?;
    let location = created.header("Location").context("Location")?;
    assert!(location.starts_with("/redfish/v1/SessionService/Sessions/"));
    assert_eq!(created.body["@odata.id"], location.as_str());
    assert_eq!(created.body["UserName"], USER);

    let with_token = |method: Method, path: &str| {
        sim.http
            .request(method, format!("{}{path}", sim.base()))
            .header("X-Auth-Token", &token)
            .send()
    };
    let sys = sim.sys();
    assert_eq!(
        with_token(Method::GET, &sys).await?.status(),
        StatusCode::OK
    );
    let listed: Value = with_token(Method::GET, "/redfish/v1/SessionService/Sessions")
        .await?
        .json()
        .await?;
    assert_eq!(listed["Members"][0]["@odata.id"], location.as_str());
    assert_eq!(
        with_token(Method::GET, &location).await?.status(),
        StatusCode::OK
    );
    let service: Value = with_token(Method::GET, "/redfish/v1/SessionService")
        .await?
        .json()
        .await?;
    assert_eq!(service["ServiceEnabled"], true);

    assert_eq!(
        with_token(Method::DELETE, &location).await?.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        with_token(Method::GET, &sys).await?.status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(sim.host().sessions().is_empty());

    // A password change ends the sessions opened with the old one.
    let again = Reply::from(login(USER, PASSWORD).await?).await?;
    let token = again.header("X-Auth-Token").unwrap();
    sim.set_faults(|f| f.password = Some("rotated".into()));
    let url = format!("{}{sys}", sim.base());
    assert_eq!(
        status_as(&sim.http, &url, Cred::Token(&token)).await?,
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}

#[tokio::test]
async fn power_actions_boot_from_the_effective_source() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let sys = sim.get(&sim.sys()).await?;
    assert_eq!(sys["PowerState"], "Off");
    let allowed = &sys["Actions"]["#ComputerSystem.Reset"]["ResetType@Redfish.AllowableValues"];
    for kind in [
        "On",
        "ForceOff",
        "GracefulShutdown",
        "ForceRestart",
        "GracefulRestart",
        "PushPowerButton",
        "Nmi",
    ] {
        assert!(allowed.as_array().unwrap().contains(&json!(kind)), "{kind}");
    }

    // On: boots the default device (the disk).
    assert_eq!(sim.reset("On").await?.status, StatusCode::NO_CONTENT);
    assert_eq!(sim.power().await?, "On");
    assert_eq!(sim.boots.sources(), [BootSource::Disk]);
    // On when on changes nothing.
    assert_eq!(sim.reset("On").await?.status, StatusCode::NO_CONTENT);
    assert_eq!(sim.boots.sources().len(), 1);

    // A one-time PXE override is used by the next boot, then cleared.
    let r = sim
        .patch(
            &sim.sys(),
            json!({ "Boot": { "BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once" } }),
        )
        .await?;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let boot = &sim.get(&sim.sys()).await?["Boot"];
    assert_eq!(boot["BootSourceOverrideTarget"], "Pxe");
    assert_eq!(boot["BootSourceOverrideEnabled"], "Once");
    assert_eq!(
        sim.reset("GracefulRestart").await?.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(sim.power().await?, "On");
    assert_eq!(sim.boots.sources()[1], BootSource::Network);
    let boot = &sim.get(&sim.sys()).await?["Boot"];
    assert_eq!(boot["BootSourceOverrideEnabled"], "Disabled");

    // The boot log shows what happened, through the control API too.
    let log = sim.host().boot_log();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (log[1].reason.as_str(), log[1].source.clone()),
        ("GracefulRestart", BootSource::Network)
    );
    let view: Value = sim
        .http
        .get(sim.control("/sim/v1/hosts/sim-0000"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(view["boot_log"][1]["source"], json!({ "kind": "network" }));
    assert_eq!(view["boot_log"][1]["target"], "Pxe");
    assert_eq!(view["boot_log"][0]["source"], json!({ "kind": "disk" }));

    // Off, and back on from the disk: the override was used up.
    assert_eq!(sim.reset("ForceOff").await?.status, StatusCode::NO_CONTENT);
    assert_eq!(sim.power().await?, "Off");
    assert_eq!(
        sim.reset("GracefulShutdown").await?.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(sim.power().await?, "Off");
    assert_eq!(
        sim.reset("PushPowerButton").await?.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(sim.power().await?, "On");
    assert_eq!(sim.boots.sources()[2], BootSource::Disk);

    // A continuous override stays.
    sim.patch(
        &sim.sys(),
        json!({ "Boot": { "BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Continuous" } }),
    )
    .await?;
    sim.reset("ForceRestart").await?;
    sim.reset("ForceRestart").await?;
    assert_eq!(
        sim.boots.sources()[3..],
        [BootSource::Network, BootSource::Network]
    );
    assert_eq!(
        sim.get(&sim.sys()).await?["Boot"]["BootSourceOverrideEnabled"],
        "Continuous"
    );
    assert_eq!(sim.reset("Nmi").await?.status, StatusCode::NO_CONTENT);
    assert_eq!(sim.boots.sources().len(), 5);
    assert_eq!(
        sim.reset("PushPowerButton").await?.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(sim.power().await?, "Off");
    // The other host was never touched.
    assert_eq!(sim.fleet.hosts()[1].power(), PowerState::Off);
    Ok(())
}

#[tokio::test]
async fn bad_requests_get_redfish_errors() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let sys = sim.sys();
    let refused = vec![
        (
            json!({ "Boot": { "BootSourceOverrideTarget": "Floppy" } }),
            "PropertyValueNotInList",
        ),
        (
            json!({ "Boot": { "BootSourceOverrideEnabled": 1 } }),
            "PropertyValueTypeError",
        ),
        (json!({ "Boot": { "BootOrder": [] } }), "PropertyUnknown"),
        (json!({ "PowerState": "On" }), "PropertyNotWritable"),
        (json!({ "Frobnicate": true }), "PropertyUnknown"),
        // Nothing of a refused PATCH is applied, even the valid parts.
        (
            json!({ "Boot": { "BootSourceOverrideTarget": "Pxe", "BootSourceOverrideMode": "Bios" } }),
            "PropertyValueNotInList",
        ),
    ];
    sim.refuses(Method::PATCH, &sys, refused).await?;
    assert_eq!(
        sim.get(&sys).await?["Boot"]["BootSourceOverrideTarget"],
        "None"
    );
    let r = sim
        .patch(
            &sys,
            json!({ "Boot": { "BootSourceOverrideTarget": "Floppy" } }),
        )
        .await?;
    assert_eq!(
        r.body["error"]["@Message.ExtendedInfo"][0]["RelatedProperties"],
        json!(["#/Boot/BootSourceOverrideTarget"])
    );

    let raw = sim
        .http
        .patch(format!("{}{sys}", sim.base()))
        .basic_auth(USER, Some(PASSWORD))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await?;
    Reply::from(raw)
        .await?
        .redfish_error(StatusCode::BAD_REQUEST, "MalformedJSON")?;

    let reset = format!("{sys}/Actions/ComputerSystem.Reset");
    let refused = vec![
        (
            json!({ "ResetType": "Explode" }),
            "ActionParameterValueNotInList",
        ),
        (json!({}), "ActionParameterMissing"),
        (
            json!({ "ResetType": "On", "Force": true }),
            "ActionParameterUnknown",
        ),
    ];
    sim.refuses(Method::POST, &reset, refused).await?;
    assert_eq!(sim.power().await?, "Off");

    sim.call(Method::GET, "/redfish/v1/Nope", None)
        .await?
        .redfish_error(StatusCode::NOT_FOUND, "ResourceMissingAtURI")?;
    sim.call(Method::GET, "/redfish/v1/Systems/not-this-one", None)
        .await?
        .redfish_error(StatusCode::NOT_FOUND, "ResourceNotFound")?;
    sim.call(Method::GET, &format!("{sys}/Processors/CPU9"), None)
        .await?
        .redfish_error(StatusCode::NOT_FOUND, "ResourceNotFound")?;
    sim.call(Method::DELETE, "/redfish/v1/Systems", None)
        .await?
        .redfish_error(StatusCode::METHOD_NOT_ALLOWED, "OperationNotAllowed")?;
    sim.call(Method::POST, &sys, Some(json!({})))
        .await?
        .redfish_error(StatusCode::METHOD_NOT_ALLOWED, "OperationNotAllowed")?;
    Ok(())
}

#[tokio::test]
async fn if_match_must_name_the_current_etag() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let sys = sim.sys();
    let r = sim.call(Method::GET, &sys, None).await?;
    let tag = r.header("ETag").context("ETag")?;
    assert!(tag.starts_with('"') && tag.ends_with('"'), "{tag}");
    // The same representation has the same tag.
    assert_eq!(
        sim.call(Method::GET, &sys, None).await?.header("ETag"),
        Some(tag.clone())
    );

    let patch = |if_match: &str, target: &str| {
        sim.http
            .patch(format!("{}{sys}", sim.base()))
            .basic_auth(USER, Some(PASSWORD))
            .header("If-Match", if_match)
            .json(&json!({ "Boot": { "BootSourceOverrideTarget": target } }))
            .send()
    };
    Reply::from(patch("\"0000000000000000\"", "Pxe").await?)
        .await?
        .redfish_error(StatusCode::PRECONDITION_FAILED, "PreconditionFailed")?;
    assert_eq!(
        sim.get(&sys).await?["Boot"]["BootSourceOverrideTarget"],
        "None"
    );

    assert_eq!(patch(&tag, "Pxe").await?.status(), StatusCode::NO_CONTENT);
    let after = sim.call(Method::GET, &sys, None).await?;
    assert_eq!(after.body["Boot"]["BootSourceOverrideTarget"], "Pxe");
    let new_tag = after.header("ETag").unwrap();
    assert_ne!(new_tag, tag);
    // The old tag is stale now; `*` always matches.
    assert_eq!(
        patch(&tag, "Hdd").await?.status(),
        StatusCode::PRECONDITION_FAILED
    );
    assert_eq!(patch("*", "Hdd").await?.status(), StatusCode::NO_CONTENT);

    // Bios/Settings checks If-Match too.
    let settings = format!("{sys}/Bios/Settings");
    let stale = sim
        .http
        .patch(format!("{}{settings}", sim.base()))
        .basic_auth(USER, Some(PASSWORD))
        .header("If-Match", "\"stale\"")
        .json(&json!({ "Attributes": { "ProcTurboMode": "Disabled" } }))
        .send()
        .await?;
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    Ok(())
}

#[tokio::test]
async fn virtual_media_inserts_ejects_and_boots() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let manager = sim.get("/redfish/v1/Managers/BMC").await?;
    let vm_collection = manager["VirtualMedia"]["@odata.id"]
        .as_str()
        .unwrap()
        .to_string();
    let members = sim.get(&vm_collection).await?;
    let cd = members["Members"][0]["@odata.id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(cd, "/redfish/v1/Managers/BMC/VirtualMedia/Cd");
    let slot = sim.get(&cd).await?;
    assert_eq!(slot["Inserted"], false);
    assert_eq!(slot["Image"], Value::Null);
    assert!(slot["MediaTypes"]
        .as_array()
        .unwrap()
        .contains(&json!("CD")));
    let insert = slot["Actions"]["#VirtualMedia.InsertMedia"]["target"]
        .as_str()
        .unwrap()
        .to_string();
    let eject = slot["Actions"]["#VirtualMedia.EjectMedia"]["target"]
        .as_str()
        .unwrap()
        .to_string();

    sim.post(&insert, json!({}))
        .await?
        .redfish_error(StatusCode::BAD_REQUEST, "ActionParameterMissing")?;
    sim.post(&insert, json!({ "Image": "ftp://x/y.iso" }))
        .await?
        .redfish_error(StatusCode::BAD_REQUEST, "ActionParameterValueFormatError")?;
    sim.post(
        &insert,
        json!({ "Image": "http://x/y.iso", "Colour": "blue" }),
    )
    .await?
    .redfish_error(StatusCode::BAD_REQUEST, "ActionParameterUnknown")?;

    let iso = "http://127.0.0.1:9/images/deploy.iso";
    let r = sim
        .post(
            &insert,
            json!({ "Image": iso, "Inserted": true, "WriteProtected": true }),
        )
        .await?;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    let slot = sim.get(&cd).await?;
    assert_eq!(
        (slot["Image"].as_str(), slot["Inserted"].as_bool()),
        (Some(iso), Some(true))
    );
    assert_eq!(slot["ImageName"], "deploy.iso");
    assert_eq!(slot["ConnectedVia"], "URI");
    // The same drive, seen from the system (Redfish 2021+ clients look there).
    let via_system = sim.get(&format!("{}/VirtualMedia/Cd", sim.sys())).await?;
    assert_eq!(via_system["Image"], iso);
    sim.post(&insert, json!({ "Image": "http://x/other.iso" }))
        .await?
        .redfish_error(StatusCode::CONFLICT, "ResourceInUse")?;

    // Booting from the CD boots the inserted image.
    sim.patch(
        &sim.sys(),
        json!({ "Boot": { "BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once" } }),
    )
    .await?;
    sim.reset("On").await?;
    assert_eq!(
        sim.boots.sources(),
        [BootSource::VirtualMedia {
            url: iso.to_string()
        }]
    );

    // Eject: with no body at all, as sushy sends it; twice is fine.
    for _ in 0..2 {
        let r = sim
            .http
            .post(format!("{}{eject}", sim.base()))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    let slot = sim.get(&cd).await?;
    assert_eq!(
        (slot["Inserted"].as_bool(), &slot["Image"]),
        (Some(false), &Value::Null)
    );

    // A CD override with an empty drive falls through to the disk.
    sim.patch(
        &sim.sys(),
        json!({ "Boot": { "BootSourceOverrideTarget": "Cd", "BootSourceOverrideEnabled": "Once" } }),
    )
    .await?;
    sim.reset("ForceRestart").await?;
    assert_eq!(sim.boots.sources()[1], BootSource::Disk);
    Ok(())
}

#[tokio::test]
async fn bios_settings_apply_at_the_next_reset() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let bios_path = format!("{}/Bios", sim.sys());
    let bios = sim.get(&bios_path).await?;
    assert_eq!(bios["Attributes"]["ProcTurboMode"], "Enabled");
    let settings_path = bios["@Redfish.Settings"]["SettingsObject"]["@odata.id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(settings_path, format!("{bios_path}/Settings"));
    assert!(bios["@Redfish.Settings"].get("Time").is_none());

    let refused = vec![
        (
            json!({ "Attributes": { "NoSuchThing": "x" } }),
            "PropertyUnknown",
        ),
        (
            json!({ "Attributes": { "ProcTurboMode": "Sometimes" } }),
            "PropertyValueNotInList",
        ),
        (
            json!({ "Attributes": { "PxeRetryCount": "three" } }),
            "PropertyValueTypeError",
        ),
        (json!({ "Attributes": [] }), "PropertyValueTypeError"),
        (
            json!({ "Attributes": {}, "Id": "x" }),
            "PropertyNotWritable",
        ),
        (
            json!({ "@Redfish.SettingsApplyTime": { "ApplyTime": "Immediate" } }),
            "PropertyValueNotInList",
        ),
    ];
    sim.refuses(Method::PATCH, &settings_path, refused).await?;

    let r = sim
        .patch(
            &settings_path,
            json!({
                "Attributes": { "ProcTurboMode": "Disabled", "PxeRetryCount": 5 },
                "@Redfish.SettingsApplyTime": { "ApplyTime": "OnReset" },
            }),
        )
        .await?;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    // Staged, not applied.
    assert_eq!(
        sim.get(&bios_path).await?["Attributes"]["ProcTurboMode"],
        "Enabled"
    );
    let pending = sim.get(&settings_path).await?;
    assert_eq!(
        pending["Attributes"],
        json!({ "ProcTurboMode": "Disabled", "PxeRetryCount": 5 })
    );

    // Powering on runs POST, which applies them.
    sim.reset("On").await?;
    let bios = sim.get(&bios_path).await?;
    assert_eq!(bios["Attributes"]["ProcTurboMode"], "Disabled");
    assert_eq!(bios["Attributes"]["PxeRetryCount"], 5);
    assert!(bios["@Redfish.Settings"]["Time"].is_string());
    assert_eq!(sim.get(&settings_path).await?["Attributes"], json!({}));

    // ResetBios stages the defaults, applied by the next reset.
    let action = bios["Actions"]["#Bios.ResetBios"]["target"]
        .as_str()
        .unwrap();
    assert_eq!(
        sim.post(action, json!({})).await?.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        sim.get(&bios_path).await?["Attributes"]["ProcTurboMode"],
        "Disabled"
    );
    sim.reset("ForceRestart").await?;
    assert_eq!(
        sim.get(&bios_path).await?["Attributes"]["ProcTurboMode"],
        "Enabled"
    );
    Ok(())
}

#[tokio::test]
async fn failing_power_actions_answer_500_and_change_nothing() -> Result<()> {
    let sim = Sim::start(options()).await?;
    sim.set_faults(|f| f.fail_power_actions = true);
    sim.reset("On")
        .await?
        .redfish_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError")?;
    assert_eq!(sim.power().await?, "Off");
    assert!(sim.boots.sources().is_empty());
    assert!(sim.host().boot_log().is_empty());
    sim.set_faults(|f| f.fail_power_actions = false);
    assert_eq!(sim.reset("On").await?.status, StatusCode::NO_CONTENT);
    assert_eq!(sim.power().await?, "On");
    Ok(())
}

#[tokio::test]
async fn an_unreachable_bmc_answers_nothing() -> Result<()> {
    let sim = Sim::start(options()).await?;
    // A connection opened before the fault, then reused after it, is cut too.
    let pooled = client();
    let root = format!("{}/redfish/v1/", sim.base());
    assert_eq!(pooled.get(&root).send().await?.status(), StatusCode::OK);

    sim.set_faults(|f| f.unreachable = true);
    let fresh = client().get(&root).send().await;
    let e = fresh.expect_err("an unreachable BMC answered");
    assert!(e.status().is_none(), "{e}");
    let reused = pooled.get(&root).send().await;
    assert!(
        reused.is_err(),
        "the pooled connection answered: {reused:?}"
    );
    // The control API still answers, and the other host's BMC too.
    let view: Value = sim
        .http
        .get(sim.control("/sim/v1/hosts/sim-0000/faults"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(view["unreachable"], true);
    let other = format!(
        "{}/redfish/v1/",
        sim.fleet.hosts()[1].bmc().unwrap().base_url
    );
    assert_eq!(client().get(&other).send().await?.status(), StatusCode::OK);

    sim.set_faults(|f| f.unreachable = false);
    assert_eq!(client().get(&root).send().await?.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn a_slow_power_change_reports_the_old_state_until_it_lands() -> Result<()> {
    let sim = Sim::start(options()).await?;
    // An hour: certainly still in flight while the test looks.
    sim.set_faults(|f| f.power_delay = Duration::from_secs(3600));
    assert_eq!(sim.reset("On").await?.status, StatusCode::NO_CONTENT);
    assert_eq!(sim.power().await?, "Off");
    assert!(sim.boots.sources().is_empty());
    sim.set_faults(|f| f.transitional_power_states = true);
    assert_eq!(sim.power().await?, "PoweringOn");
    // On while going on changes nothing.
    assert_eq!(sim.reset("On").await?.status, StatusCode::NO_CONTENT);
    assert_eq!(sim.power().await?, "PoweringOn");

    // A newer action replaces the one in flight; this one lands soon.
    sim.set_faults(|f| f.power_delay = Duration::from_millis(100));
    assert_eq!(
        sim.reset("ForceRestart").await?.status,
        StatusCode::NO_CONTENT
    );
    poll("the power-on to land", || async {
        Ok((sim.power().await? == "On").then_some(()))
    })
    .await?;
    assert_eq!(sim.boots.sources(), [BootSource::Disk]);

    assert_eq!(sim.reset("ForceOff").await?.status, StatusCode::NO_CONTENT);
    poll("the power-off to land", || async {
        Ok((sim.power().await? == "Off").then_some(()))
    })
    .await?;
    // The hour-long change never landed on its own: one boot in all.
    assert_eq!(sim.host().boot_count(), 1);
    Ok(())
}

#[tokio::test]
async fn host_state_survives_a_restart() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let uuid = sim.host().uuid().to_string();
    let iso = "https://images.example/ipa.iso";
    sim.reset("On").await?;
    sim.patch(
        &sim.sys(),
        json!({ "Boot": { "BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Continuous", "BootSourceOverrideMode": "Legacy" } }),
    )
    .await?;
    let insert = "/redfish/v1/Managers/BMC/VirtualMedia/Cd/Actions/VirtualMedia.InsertMedia";
    sim.post(insert, json!({ "Image": iso, "WriteProtected": false }))
        .await?;
    sim.patch(
        &format!("{}/Bios/Settings", sim.sys()),
        json!({ "Attributes": { "SriovGlobalEnable": "Enabled" } }),
    )
    .await?;
    sim.set_faults(|f| f.password = Some("rotated".into()));
    // Host 1: a power-on still in flight when the simulator stops.
    let h1 = sim.fleet.hosts()[1].clone();
    let mut slow = h1.faults();
    slow.power_delay = Duration::from_secs(3600);
    h1.set_faults(slow);
    h1.reset(strata_sim::ResetType::On)?;
    drop(h1);
    let disk = sim.host().disk_path().to_path_buf();
    let dir = sim.stop().await;
    assert!(dir.path().join("state.json").exists());

    let sim = Sim::start_in(options(), dir).await?;
    let h = sim.host();
    assert_eq!(h.uuid(), uuid);
    assert_eq!(h.power(), PowerState::On);
    let boot = h.boot_override();
    assert_eq!(
        (
            boot.target.as_str(),
            boot.enabled.as_str(),
            boot.mode.as_str()
        ),
        ("Pxe", "Continuous", "Legacy")
    );
    let vm = h.virtual_media();
    assert_eq!(
        (vm.image.as_deref(), vm.inserted, vm.write_protected),
        (Some(iso), true, false)
    );
    assert_eq!(h.bios_pending().0["SriovGlobalEnable"], "Enabled");
    assert_eq!(h.boot_log().len(), 1);
    assert_eq!(h.password(), "rotated");
    assert_eq!(std::fs::metadata(&disk)?.len(), 10 << 30);
    // The in-flight power-on landed at the start, as a boot.
    assert_eq!(sim.fleet.hosts()[1].power(), PowerState::On);
    assert_eq!(
        sim.boots.0.lock().unwrap()[0],
        ("sim-0001".to_string(), BootSource::Disk)
    );

    // Over Redfish too, with the rotated password.
    let r = sim
        .http
        .get(format!("{}{}", sim.base(), sim.sys()))
        .basic_auth(USER, Some("rotated"))
        .send()
        .await?;
    let sys: Value = r.json().await?;
    assert_eq!(sys["PowerState"], "On");
    assert_eq!(sys["Boot"]["BootSourceOverrideTarget"], "Pxe");
    sim.stop().await;
    Ok(())
}

#[tokio::test]
async fn tls_bmcs_verify_with_the_fleet_ca_only() -> Result<()> {
    let sim = Sim::start(FleetOptions {
        tls: true,
        ..options()
    })
    .await?;
    assert!(
        sim.base().starts_with("https://127.0.0.1:"),
        "{}",
        sim.base()
    );
    let ca_path = sim.fleet.ca_path().context("ca path")?;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(ca_path)?)?;
    let trusting = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(ca)
        .build()?;
    let url = format!("{}{}", sim.base(), sim.sys());
    let admin = Cred::Basic(USER, PASSWORD);
    assert_eq!(status_as(&trusting, &url, admin).await?, StatusCode::OK);
    let e = client()
        .get(&url)
        .basic_auth(USER, Some(PASSWORD))
        .send()
        .await
        .expect_err("a client without the fleet CA trusted the BMC");
    assert!(e.is_connect(), "{e:?}");

    // hosts.json names the CA and the https URLs; a restart reuses the same certificate.
    let listing: Value =
        serde_json::from_slice(&std::fs::read(sim.dir.path().join("hosts.json"))?)?;
    assert_eq!(listing["ca_file"], ca_path.to_str().unwrap());
    assert!(listing["hosts"][0]["redfish"]
        .as_str()
        .unwrap()
        .starts_with("https://"));
    let ca_before = std::fs::read(ca_path)?;
    let dir = sim.stop().await;
    let sim = Sim::start_in(
        FleetOptions {
            tls: true,
            ..options()
        },
        dir,
    )
    .await?;
    assert_eq!(std::fs::read(sim.fleet.ca_path().unwrap())?, ca_before);
    let url = format!("{}/redfish/v1/", sim.base());
    assert_eq!(trusting.get(&url).send().await?.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn inventory_resources_match_the_inventory() -> Result<()> {
    let sim = Sim::start(FleetOptions {
        cpus: 16,
        ram_mib: 32768,
        disks: 2,
        nics: 3,
        ..options()
    })
    .await?;
    let inv = sim.host().inventory().clone();
    let sys = sim.get(&sim.sys()).await?;
    assert_eq!(sys["UUID"], inv.system.uuid.as_str());
    assert_eq!(sys["SerialNumber"], inv.system.serial_number.as_str());
    assert_eq!(sys["Manufacturer"], inv.system.manufacturer.as_str());
    assert_eq!(sys["ProcessorSummary"]["LogicalProcessorCount"], 16);
    assert_eq!(sys["ProcessorSummary"]["Count"], 2);
    assert_eq!(sys["MemorySummary"]["TotalSystemMemoryGiB"], 32.0);

    let threads: u64 = futures_sum(&sim, "Processors", "TotalThreads").await?;
    assert_eq!(threads, 16);
    let mib: u64 = futures_sum(&sim, "Memory", "CapacityMiB").await?;
    assert_eq!(mib, 32768);

    let nics = sim
        .get(&format!("{}/EthernetInterfaces", sim.sys()))
        .await?;
    assert_eq!(nics["Members@odata.count"], 3);
    for (member, nic) in nics["Members"].as_array().unwrap().iter().zip(&inv.nics) {
        let n = sim.get(member["@odata.id"].as_str().unwrap()).await?;
        assert_eq!(n["MACAddress"], nic.mac.as_str());
        assert_eq!(n["SpeedMbps"], nic.speed_mbps);
        assert_eq!(
            n["LinkStatus"],
            if nic.link_up { "LinkUp" } else { "LinkDown" }
        );
        assert_eq!(n["Status"]["Health"], "OK");
    }

    let storage = sim.get(&format!("{}/Storage/1", sim.sys())).await?;
    assert_eq!(storage["StorageControllers"][0]["MemberId"], "0");
    let drives = storage["Drives"].as_array().unwrap();
    assert_eq!(drives.len(), 2);
    for (link, disk) in drives.iter().zip(&inv.disks) {
        let d = sim.get(link["@odata.id"].as_str().unwrap()).await?;
        assert_eq!(d["CapacityBytes"], disk.size_bytes);
        assert_eq!(d["SerialNumber"], disk.serial_number.as_str());
        assert_eq!(d["MediaType"], if disk.rotational { "HDD" } else { "SSD" });
    }
    let simple = sim.get(&format!("{}/SimpleStorage/1", sim.sys())).await?;
    assert_eq!(
        simple["Devices"][1]["CapacityBytes"],
        inv.disks[1].size_bytes
    );
    let chassis = sim.get("/redfish/v1/Chassis/1").await?;
    assert_eq!(
        chassis["Links"]["ComputerSystems"][0]["@odata.id"],
        sim.sys().as_str()
    );
    Ok(())
}

/// Sums `field` over the members of the system's `collection`.
async fn futures_sum(sim: &Sim, collection: &str, field: &str) -> Result<u64> {
    let c = sim.get(&format!("{}/{collection}", sim.sys())).await?;
    let mut sum = 0;
    for m in c["Members"].as_array().context("Members")? {
        let r = sim
            .get(m["@odata.id"].as_str().context("@odata.id")?)
            .await?;
        sum += r[field]
            .as_u64()
            .with_context(|| format!("{field} in {r}"))?;
    }
    Ok(sum)
}

/// Every `@odata.id` reachable from the service root resolves, to a resource that names
/// itself by that path, with an `@odata.type`, and an `ETag`.
#[tokio::test]
async fn every_link_resolves() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from(["/redfish/v1/".to_string()]);
    while let Some(path) = queue.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let r = sim.call(Method::GET, &path, None).await?;
        ensure!(r.status == StatusCode::OK, "GET {path}: {}", r.status);
        ensure!(
            r.body["@odata.id"] == path.as_str(),
            "{path} names itself {}",
            r.body["@odata.id"]
        );
        ensure!(
            r.body["@odata.type"]
                .as_str()
                .is_some_and(|t| t.starts_with('#')),
            "{path}"
        );
        ensure!(r.body["@odata.context"].is_string(), "{path}");
        ensure!(r.header("ETag").is_some(), "no ETag on {path}");
        collect_links(&r.body, &mut queue, true);
    }
    assert!(seen.len() > 25, "{seen:?}");
    assert!(seen.contains(&format!("{}/Storage/1/Drives/sda", sim.sys())));
    Ok(())
}

fn collect_links(v: &Value, out: &mut VecDeque<String>, top: bool) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("@odata.id", Value::String(s)) if !top && !s.contains('#') => {
                        out.push_back(s.clone())
                    }
                    _ => collect_links(v, out, false),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_links(v, out, false)),
        _ => {}
    }
}

#[tokio::test]
async fn control_api_shows_hosts_and_turns_the_knobs() -> Result<()> {
    let sim = Sim::start(options()).await?;
    let http = &sim.http;
    let all: Value = http
        .get(sim.control("/sim/v1/hosts"))
        .send()
        .await?
        .json()
        .await?;
    let hosts = all["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2);
    assert_eq!(hosts[1]["name"], "sim-0001");
    assert_eq!(hosts[0]["username"], USER);
    assert_eq!(hosts[0]["password"], PASSWORD);
    assert_eq!(hosts[0]["power"], "Off");
    assert_eq!(hosts[0]["boot_mac"], sim.host().inventory().boot_mac());
    let redfish = hosts[0]["redfish"].as_str().unwrap();
    assert_eq!(redfish, format!("{}{}", sim.base(), sim.sys()));

    let missing = http
        .get(sim.control("/sim/v1/hosts/sim-9999"))
        .send()
        .await?;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);

    // PATCH sets the knobs given; PUT replaces the whole set.
    let faults = sim.control("/sim/v1/hosts/sim-0000/faults");
    let r = http
        .patch(&faults)
        .json(&json!({ "fail_power_actions": true, "power_delay_ms": 250 }))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    let r = http
        .patch(&faults)
        .json(&json!({ "unreachable": false }))
        .send()
        .await?;
    let f: Value = r.json().await?;
    assert_eq!(
        (
            f["fail_power_actions"].as_bool(),
            f["power_delay_ms"].as_u64()
        ),
        (Some(true), Some(250))
    );
    assert_eq!(sim.host().faults().power_delay, Duration::from_millis(250));
    let r = http
        .put(&faults)
        .json(&json!({ "password": "s3cret" }))
        .send()
        .await?;
    let f: Value = r.json().await?;
    assert_eq!(f["fail_power_actions"], false);
    assert_eq!(sim.host().password(), "s3cret");
    let view: Value = http
        .get(sim.control("/sim/v1/hosts/sim-0000"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(view["password"], "s3cret");
    let bad = http
        .patch(&faults)
        .json(&json!({ "explode": true }))
        .send()
        .await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // The power button: at once, and a power-on boots.
    let power = sim.control("/sim/v1/hosts/sim-0001/power");
    let r = http
        .post(&power)
        .json(&json!({ "state": "On" }))
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await?;
    assert_eq!(v["power"], "On");
    assert_eq!(v["boot_log"][0]["reason"], "control");
    assert_eq!(sim.boots.0.lock().unwrap()[0].0, "sim-0001");
    let bad = http
        .post(&power)
        .json(&json!({ "state": "Sideways" }))
        .send()
        .await?;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    // hosts.json lists what a controller needs to enrol each host.
    let listing: Value =
        serde_json::from_slice(&std::fs::read(sim.dir.path().join("hosts.json"))?)?;
    let h0 = &listing["hosts"][0];
    assert_eq!(h0["name"], "sim-0000");
    assert_eq!(h0["uuid"], sim.host().uuid());
    assert_eq!(h0["redfish"], redfish);
    assert_eq!(
        (h0["username"].as_str(), h0["password"].as_str()),
        (Some(USER), Some(PASSWORD))
    );
    assert_eq!(h0["boot_mac"], sim.host().inventory().nics[0].mac.as_str());
    assert_eq!(h0["inventory"]["cpu"]["arch"], "x86_64");
    assert_eq!(
        listing["control_url"],
        format!("http://{}", sim.fleet.control_addr().unwrap())
    );
    Ok(())
}

#[tokio::test]
async fn fixed_ports_count_up_from_the_base() -> Result<()> {
    // Redfish (TCP) and IPMI (UDP) ports, each from its own base.
    let (base, ipmi_base) = (free_port_pair(false)?, free_port_pair(true)?);
    let sim = Sim::start(FleetOptions {
        bmc_base_port: base,
        ipmi_base_port: ipmi_base,
        ..options()
    })
    .await?;
    let ports: Vec<(u16, u16)> = sim
        .fleet
        .hosts()
        .iter()
        .map(|h| {
            let bmc = h.bmc().unwrap();
            (bmc.port, bmc.ipmi.unwrap().port())
        })
        .collect();
    assert_eq!(ports, [(base, ipmi_base), (base + 1, ipmi_base + 1)]);
    let too_many = FleetOptions {
        hosts: 10,
        bmc_base_port: 65530,
        ..FleetOptions::default()
    };
    assert!(!fleet_starts(too_many).await?);
    Ok(())
}
