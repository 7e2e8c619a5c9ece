//! The node agent against an in-memory control plane and the fake hypervisor: spawning,
//! power changes, reboots, deletes, injected spawn failures reported as retryable faults,
//! reports sent only on change, and the run loop registering, heartbeating and following
//! the desired state.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata_agent::{FakeHypervisor, NodeAgent};
use strata_agent_api::*;

#[derive(Default)]
struct Desired {
    revision: i64,
    instances: Vec<InstanceSpec>,
}

#[derive(Default)]
struct Server {
    registered: Mutex<Vec<HostRegistration>>,
    beats: Mutex<usize>,
    desired: Mutex<Desired>,
    reports: Mutex<Vec<InstanceReport>>,
    /// Snapshot uploads: `(uuid, image, data)`.
    uploads: Mutex<Vec<(String, String, Vec<u8>)>>,
    /// Snapshot failures: `(uuid, image, fault)`.
    snapshot_faults: Mutex<Vec<(String, String, Fault)>>,
    /// How the next uploads are answered (`None`: accepted).
    upload_answers: Mutex<Vec<ApiError>>,
    changed: tokio::sync::Notify,
    /// Bumped on every registration and report, so tests wait for the agent's calls.
    activity: Activity,
}

struct Activity(tokio::sync::watch::Sender<u64>);

impl Default for Activity {
    fn default() -> Self {
        Activity(tokio::sync::watch::channel(0).0)
    }
}

impl Activity {
    fn bump(&self) {
        self.0.send_modify(|n| *n += 1);
    }
}

impl Server {
    fn set(&self, instances: Vec<InstanceSpec>) {
        let mut d = self.desired.lock().unwrap();
        d.revision += 1;
        d.instances = instances;
        self.changed.notify_waiters();
    }
    fn reports(&self) -> Vec<InstanceReport> {
        self.reports.lock().unwrap().clone()
    }
}

impl ControlPlane for Server {
    fn register<'a>(&'a self, reg: &'a HostRegistration) -> ApiFuture<'a, Registered> {
        self.registered.lock().unwrap().push(reg.clone());
        self.activity.bump();
        Box::pin(async {
            Ok(Registered {
                provider_uuid: "rp-1".into(),
                service_id: "svc-1".into(),
                heartbeat_interval_s: 1,
            })
        })
    }
    fn heartbeat<'a>(&'a self, _host: &'a str) -> ApiFuture<'a, ()> {
        *self.beats.lock().unwrap() += 1;
        Box::pin(async { Ok(()) })
    }
    fn desired<'a>(
        &'a self,
        _host: &'a str,
        after: i64,
        wait: Duration,
    ) -> ApiFuture<'a, DesiredInstances> {
        Box::pin(async move {
            let notified = self.changed.notified();
            if self.desired.lock().unwrap().revision <= after {
                let _ = tokio::time::timeout(wait, notified).await;
            }
            let d = self.desired.lock().unwrap();
            Ok(DesiredInstances {
                revision: d.revision,
                instances: d.instances.clone(),
            })
        })
    }
    fn report<'a>(&'a self, report: &'a InstanceReport) -> ApiFuture<'a, ()> {
        self.reports.lock().unwrap().push(report.clone());
        self.activity.bump();
        Box::pin(async { Ok(()) })
    }
    fn upload_snapshot<'a>(
        &'a self,
        uuid: &'a str,
        image_id: &'a str,
        path: &'a std::path::Path,
    ) -> ApiFuture<'a, ()> {
        Box::pin(async move {
            let data = std::fs::read(path).expect("the snapshot file");
            let answer = {
                let mut a = self.upload_answers.lock().unwrap();
                (!a.is_empty()).then(|| a.remove(0))
            };
            if answer.is_none() {
                self.uploads
                    .lock()
                    .unwrap()
                    .push((uuid.into(), image_id.into(), data));
            }
            self.activity.bump();
            answer.map_or(Ok(()), Err)
        })
    }
    fn snapshot_failed<'a>(
        &'a self,
        uuid: &'a str,
        image_id: &'a str,
        fault: &'a Fault,
    ) -> ApiFuture<'a, ()> {
        self.snapshot_faults
            .lock()
            .unwrap()
            .push((uuid.into(), image_id.into(), fault.clone()));
        self.activity.bump();
        Box::pin(async { Ok(()) })
    }
}

fn spec(uuid: &str, generation: i64, power: Power) -> InstanceSpec {
    InstanceSpec {
        uuid: uuid.into(),
        name: format!("instance-{uuid}"),
        hostname: uuid.into(),
        generation,
        power,
        reboot_seq: 0,
        hard_reboot: false,
        sizing: Sizing {
            vcpus: 1,
            memory_mb: 512,
            root_gb: 1,
            ..Default::default()
        },
        image_id: None,
        disks: vec![],
        vifs: vec![],
        user_data: None,
        metadata: BTreeMap::new(),
        key_data: None,
        config_drive: false,
        snapshot: None,
        display_name: None,
        project_id: None,
        availability_zone: None,
        key_name: None,
        launch_index: 0,
        image_properties: Default::default(),
        previous_sizing: None,
    }
}

fn setup() -> (Arc<Server>, Arc<FakeHypervisor>, NodeAgent) {
    let server = Arc::new(Server::default());
    let hv = Arc::new(FakeHypervisor::new(8, 16384, 100));
    let agent = NodeAgent::new("h1", "127.0.0.1", server.clone(), hv.clone());
    (server, hv, agent)
}

#[tokio::test]
async fn reconcile_spawns_powers_reboots_and_deletes() {
    let (server, hv, agent) = setup();
    let a = spec("a", 1, Power::Running);
    let b = spec("b", 1, Power::Shutdown);
    agent.reconcile(&[a.clone(), b.clone()]).await.unwrap();
    assert_eq!(hv.guests()["a"], (Power::Running, 1));
    assert_eq!(hv.guests()["b"].0, Power::Shutdown);
    let r = server.reports();
    assert_eq!(r.len(), 2);
    assert!(r
        .iter()
        .any(|x| x.uuid == "a" && x.power_state == PowerState::Running));
    assert!(r
        .iter()
        .any(|x| x.uuid == "b" && x.power_state == PowerState::Shutdown));
    // Nothing changed: nothing done, nothing reported.
    assert_eq!(agent.reconcile(&[a.clone(), b.clone()]).await.unwrap(), 0);
    assert_eq!(server.reports().len(), 2);
    // Stop a, pause b? b is off: start it; reboot a after starting it again.
    let a2 = spec("a", 2, Power::Shutdown);
    let b2 = spec("b", 2, Power::Running);
    agent.reconcile(&[a2, b2.clone()]).await.unwrap();
    assert_eq!(hv.guests()["a"].0, Power::Shutdown);
    assert_eq!(hv.guests()["b"].0, Power::Running);
    let mut a3 = spec("a", 3, Power::Running);
    a3.reboot_seq = 1;
    a3.hard_reboot = true;
    agent.reconcile(&[a3.clone(), b2.clone()]).await.unwrap();
    let (_, boots) = hv.guests()["a"];
    assert_eq!(boots, 3, "started again (2) and rebooted (3)");
    let last = server
        .reports()
        .into_iter()
        .rfind(|x| x.uuid == "a")
        .unwrap();
    assert_eq!((last.generation, last.reboot_seq), (3, 1));
    // The same reboot sequence again does not reboot twice.
    agent.reconcile(&[a3.clone(), b2.clone()]).await.unwrap();
    assert_eq!(hv.guests()["a"].1, 3);
    // b no longer wanted: destroyed and reported deleted.
    agent.reconcile(&[a3]).await.unwrap();
    assert!(!hv.guests().contains_key("b"));
    assert!(server
        .reports()
        .iter()
        .any(|x| x.uuid == "b" && x.deleted && x.host == "h1"));
}

#[tokio::test]
async fn spawn_failures_are_reported_as_retryable_faults() {
    let (server, hv, agent) = setup();
    hv.fail_next_spawns(1);
    let a = spec("a", 1, Power::Running);
    agent.reconcile(std::slice::from_ref(&a)).await.unwrap();
    let r = server.reports();
    let fault = r[0].fault.clone().expect("a fault");
    assert!(fault.retryable);
    assert!(fault.message.contains("injected failure"), "{fault:?}");
    assert_eq!(r[0].power_state, PowerState::NoState);
    assert!(hv.guests().is_empty());
    // The next pass (the server kept it here) succeeds and clears the fault.
    agent.reconcile(&[a]).await.unwrap();
    let last = server.reports().pop().unwrap();
    assert!(last.fault.is_none());
    assert_eq!(last.power_state, PowerState::Running);
}

fn volume_disk(volume: &str, device: &str, boot_index: Option<i64>) -> Disk {
    Disk {
        device_name: device.into(),
        boot_index,
        connection_info: serde_json::json!({"driver_volume_type": "file",
            "data": {"path": format!("/volumes/{volume}"), "volume_id": volume}}),
        size_gb: 1,
        source: "volume".into(),
        volume_id: Some(volume.into()),
    }
}

#[tokio::test]
async fn volumes_follow_the_spec_and_are_reported() {
    let (server, hv, agent) = setup();
    // Booted from a volume: the root volume is attached at spawn.
    let mut a = spec("a", 1, Power::Running);
    a.disks = vec![volume_disk("root", "vda", Some(0))];
    agent.reconcile(std::slice::from_ref(&a)).await.unwrap();
    assert_eq!(hv.volumes("a").keys().collect::<Vec<_>>(), vec!["root"]);
    assert_eq!(server.reports().pop().unwrap().volumes, vec!["root"]);
    // A volume given later is attached to the running guest, and reported.
    let mut a2 = spec("a", 2, Power::Running);
    a2.disks = vec![
        volume_disk("root", "vda", Some(0)),
        volume_disk("data", "vdb", None),
    ];
    agent.reconcile(std::slice::from_ref(&a2)).await.unwrap();
    assert_eq!(hv.volumes("a")["data"], "vdb");
    let last = server.reports().pop().unwrap();
    assert_eq!(
        (last.generation, last.volumes),
        (2, vec!["data".into(), "root".into()])
    );
    assert_eq!(hv.guests()["a"].1, 1, "attached without a reboot");
    // Taken from the spec: detached, also from a stopped guest.
    let mut a3 = spec("a", 3, Power::Shutdown);
    a3.disks = vec![volume_disk("root", "vda", Some(0))];
    agent.reconcile(std::slice::from_ref(&a3)).await.unwrap();
    assert!(!hv.volumes("a").contains_key("data"));
    assert_eq!(server.reports().pop().unwrap().volumes, vec!["root"]);
    // Attaching to a stopped guest works too.
    let mut a4 = spec("a", 4, Power::Shutdown);
    a4.disks = a2.disks.clone();
    agent.reconcile(&[a4]).await.unwrap();
    assert!(hv.volumes("a").contains_key("data"));
    assert_eq!(hv.guests()["a"].0, Power::Shutdown);
}

fn vif(port: &str, mac: &str) -> strata_agent_api::Vif {
    strata_agent_api::Vif {
        port_id: port.into(),
        mac_address: mac.into(),
        network_id: "net".into(),
        mtu: 1450,
        vif_type: "tap".into(),
        fixed_ips: vec![],
    }
}

#[tokio::test]
async fn nics_follow_the_spec_without_a_reboot() {
    let (_server, hv, agent) = setup();
    let mut a = spec("a", 1, Power::Running);
    a.vifs = vec![vif("p1", "fa:16:3e:00:00:01")];
    agent.reconcile(std::slice::from_ref(&a)).await.unwrap();
    assert_eq!(hv.interfaces_of("a"), vec!["fa:16:3e:00:00:01"]);
    // A port given later is plugged (os-interface attach), one taken away unplugged.
    let mut a2 = spec("a", 2, Power::Running);
    a2.vifs = vec![vif("p2", "FA:16:3E:00:00:02")];
    agent.reconcile(std::slice::from_ref(&a2)).await.unwrap();
    assert_eq!(hv.interfaces_of("a"), vec!["fa:16:3e:00:00:02"]);
    assert_eq!(hv.guests()["a"].1, 1, "plugged without a reboot");
    // Nothing to do when they match.
    assert_eq!(agent.reconcile(std::slice::from_ref(&a2)).await.unwrap(), 0);
}

#[tokio::test]
async fn a_resize_in_place_keeps_the_old_size_until_confirmed_and_is_not_repeated() {
    let (server, hv, agent) = setup();
    let a = spec("a", 1, Power::Running);
    agent.reconcile(std::slice::from_ref(&a)).await.unwrap();
    assert_eq!(hv.sizing_of("a"), Some((a.sizing.clone(), None)));
    // Resized on its host (VERIFY_RESIZE): off, resized, on again, the old size kept.
    let mut b = spec("a", 2, Power::Running);
    b.sizing.vcpus = 2;
    b.sizing.memory_mb = 1024;
    b.previous_sizing = Some(a.sizing.clone());
    agent.reconcile(std::slice::from_ref(&b)).await.unwrap();
    assert_eq!(
        hv.sizing_of("a"),
        Some((b.sizing.clone(), Some(a.sizing.clone())))
    );
    assert_eq!(
        hv.guests()["a"],
        (Power::Running, 2),
        "powered off and on again"
    );
    // Confirmed: what was kept goes, the guest is not touched.
    let mut c = b.clone();
    c.generation = 3;
    c.previous_sizing = None;
    agent.reconcile(std::slice::from_ref(&c)).await.unwrap();
    assert_eq!(hv.sizing_of("a"), Some((b.sizing.clone(), None)));
    assert_eq!(hv.guests()["a"], (Power::Running, 2));
    // A restarted agent does not resize (or reboot) the guest again.
    let again = NodeAgent::new("h1", "127.0.0.1", server.clone(), hv.clone());
    again.reconcile(std::slice::from_ref(&c)).await.unwrap();
    assert_eq!(hv.guests()["a"], (Power::Running, 2));
    // A revert brings the old size back (the spec names the old size as previous until the
    // revert is over).
    let mut d = spec("a", 4, Power::Running);
    d.sizing = a.sizing.clone();
    d.previous_sizing = Some(a.sizing.clone());
    again.reconcile(std::slice::from_ref(&d)).await.unwrap();
    assert_eq!(hv.sizing_of("a"), Some((a.sizing.clone(), None)));
    assert_eq!(hv.guests()["a"], (Power::Running, 3));
}

#[tokio::test]
async fn run_registers_beats_and_follows_the_desired_state() {
    let (server, hv, agent) = setup();
    let agent = Arc::new(agent);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(agent.clone().run(stop_rx));
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut calls = server.activity.0.subscribe();
    // Waits for the agent's next call to the server until `cond` holds.
    macro_rules! until {
        ($what:expr, $cond:expr) => {
            while !$cond {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::timeout(left, calls.changed())
                    .await
                    .unwrap_or_else(|_| panic!("timed out waiting for {}", $what))
                    .unwrap();
            }
        };
    }
    until!(
        "registration",
        !server.registered.lock().unwrap().is_empty()
    );
    let reg = server.registered.lock().unwrap()[0].clone();
    assert_eq!(
        (reg.host.as_str(), reg.vcpus, reg.memory_mb),
        ("h1", 8, 16384)
    );
    assert_eq!(reg.hypervisor_type, "fake");
    server.set(vec![spec("x", 1, Power::Running)]);
    until!("the guest", hv.guests().contains_key("x"));
    server.set(vec![]);
    until!("the delete", hv.guests().is_empty());
    assert!(*server.beats.lock().unwrap() >= 1);
    stop_tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the agent stops when told")
        .unwrap();
}

/// A fresh directory for an agent's snapshots.
fn work_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!(
        "strata-agent-test-{}-{name}-{:?}",
        std::process::id(),
        Instant::now()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Waits (at most 10 s) for the agent's calls to the server until `cond` holds.
async fn until(server: &Server, what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut calls = server.activity.0.subscribe();
    while !cond() {
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::timeout(left, calls.changed())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap();
    }
}

fn with_snapshot(mut s: InstanceSpec, image: &str) -> InstanceSpec {
    s.snapshot = Some(SnapshotRequest {
        image_id: image.into(),
        disk_format: "raw".into(),
        container_format: "bare".into(),
    });
    s
}

#[tokio::test]
async fn a_snapshot_is_taken_and_uploaded_once() {
    let (server, hv, _) = setup();
    let dir = work_dir("once");
    let agent = NodeAgent::new("h1", "127.0.0.1", server.clone(), hv.clone()).with_work_dir(&dir);
    let mut a = spec("a", 1, Power::Running);
    a.image_id = Some("img-1".into());
    agent.reconcile(std::slice::from_ref(&a)).await.unwrap();
    // Asked for a snapshot: taken in the background and uploaded.
    let mut a2 = with_snapshot(a.clone(), "snap-1");
    a2.generation = 2;
    agent.reconcile(std::slice::from_ref(&a2)).await.unwrap();
    until(&server, "the upload", || {
        !server.uploads.lock().unwrap().is_empty()
    })
    .await;
    let (uuid, image, data) = server.uploads.lock().unwrap()[0].clone();
    assert_eq!((uuid.as_str(), image.as_str()), ("a", "snap-1"));
    assert_eq!(data, strata_agent::fake_snapshot_data("a", Some("img-1")));
    assert_eq!(data.len(), strata_agent::FAKE_SNAPSHOT_BYTES);
    assert_eq!(hv.snapshots_taken("a"), 1);
    // Passes while the server still asks for it (its answer not yet applied) do not take it
    // again; the guest was never stopped or rebooted for it.
    agent.reconcile(std::slice::from_ref(&a2)).await.unwrap();
    agent.reconcile(std::slice::from_ref(&a2)).await.unwrap();
    assert_eq!(hv.snapshots_taken("a"), 1);
    assert_eq!(server.uploads.lock().unwrap().len(), 1);
    assert_eq!(hv.guests()["a"], (Power::Running, 1));
    // The file is removed after the upload (by the snapshot's task, which finishes after the
    // upload returns).
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&dir).unwrap().count() > 0 {
        assert!(Instant::now() < deadline, "the snapshot file stays");
        tokio::task::yield_now().await;
    }
    // A restarted agent given the same request takes it again (the control plane decides:
    // here it answers that the image is no longer asked for) and then leaves it.
    let restarted =
        NodeAgent::new("h1", "127.0.0.1", server.clone(), hv.clone()).with_work_dir(&dir);
    server
        .upload_answers
        .lock()
        .unwrap()
        .push(ApiError::Refused {
            status: 409,
            body: "no snapshot pending".into(),
        });
    restarted
        .reconcile(std::slice::from_ref(&a2))
        .await
        .unwrap();
    until(&server, "the refused upload", || {
        server.upload_answers.lock().unwrap().is_empty()
    })
    .await;
    restarted
        .reconcile(std::slice::from_ref(&a2))
        .await
        .unwrap();
    assert_eq!(hv.snapshots_taken("a"), 2);
    // A new request is a new snapshot.
    let mut a3 = with_snapshot(a.clone(), "snap-2");
    a3.generation = 3;
    restarted
        .reconcile(std::slice::from_ref(&a3))
        .await
        .unwrap();
    until(&server, "the second upload", || {
        server.uploads.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(server.uploads.lock().unwrap()[1].1, "snap-2");
    assert_eq!(hv.snapshots_taken("a"), 3);
    assert!(server.snapshot_faults.lock().unwrap().is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_unreachable_server_gets_the_snapshot_on_a_later_pass() {
    let (server, hv, _) = setup();
    let dir = work_dir("retry");
    let agent = NodeAgent::new("h1", "127.0.0.1", server.clone(), hv.clone()).with_work_dir(&dir);
    server
        .upload_answers
        .lock()
        .unwrap()
        .push(ApiError::Unreachable("connection refused".into()));
    let a = with_snapshot(spec("a", 1, Power::Running), "snap-1");
    agent.reconcile(std::slice::from_ref(&a)).await.unwrap();
    until(&server, "the failed upload", || {
        server.upload_answers.lock().unwrap().is_empty()
    })
    .await;
    assert!(server.uploads.lock().unwrap().is_empty());
    // The upload is not lost: the next pass takes and uploads it again.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.uploads.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no second upload");
        agent.reconcile(std::slice::from_ref(&a)).await.unwrap();
        let mut calls = server.activity.0.subscribe();
        let _ = tokio::time::timeout(Duration::from_millis(200), calls.changed()).await;
    }
    assert_eq!(hv.snapshots_taken("a"), 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn snapshot_failures_are_reported_once() {
    let (server, hv, _) = setup();
    let dir = work_dir("fail");
    let agent = NodeAgent::new("h1", "127.0.0.1", server.clone(), hv.clone()).with_work_dir(&dir);
    agent
        .reconcile(&[spec("a", 1, Power::Running)])
        .await
        .unwrap();
    hv.fail_next_snapshots(1);
    let a = with_snapshot(spec("a", 2, Power::Running), "snap-1");
    agent.reconcile(std::slice::from_ref(&a)).await.unwrap();
    until(&server, "the failure", || {
        !server.snapshot_faults.lock().unwrap().is_empty()
    })
    .await;
    let (uuid, image, fault) = server.snapshot_faults.lock().unwrap()[0].clone();
    assert_eq!((uuid.as_str(), image.as_str()), ("a", "snap-1"));
    assert!(fault.message.contains("injected failure"), "{fault:?}");
    assert!(!fault.retryable);
    agent.reconcile(std::slice::from_ref(&a)).await.unwrap();
    assert_eq!(server.snapshot_faults.lock().unwrap().len(), 1);
    assert!(server.uploads.lock().unwrap().is_empty());
    assert_eq!(hv.snapshots_taken("a"), 0);
    // A guest that is not there cannot be snapshotted: also a failure.
    let b = with_snapshot(spec("b", 1, Power::Running), "snap-b");
    hv.fail_next_spawns(1);
    agent.reconcile(&[a, b]).await.unwrap();
    until(&server, "the second failure", || {
        server.snapshot_faults.lock().unwrap().len() == 2
    })
    .await;
    assert!(server.snapshot_faults.lock().unwrap()[1]
        .2
        .message
        .contains("no guest b"));
    let _ = std::fs::remove_dir_all(&dir);
}
