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
