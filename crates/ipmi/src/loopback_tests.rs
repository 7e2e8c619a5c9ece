//! Our client against our server over loopback UDP: every command with both cipher suites,
//! the refusals, and retransmission through a lossy relay.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;

use crate::*;

async fn server_with(bmc: Arc<FakeBmc>, options: ServerOptions) -> IpmiServer {
    IpmiServer::bind_with(
        "127.0.0.1:0".parse().unwrap(),
        Credentials::new("admin", "password"),
        bmc,
        options,
    )
    .await
    .unwrap()
}

async fn server(bmc: Arc<FakeBmc>) -> IpmiServer {
    server_with(bmc, ServerOptions::default()).await
}

fn options(suites: &[CipherSuite]) -> ClientOptions {
    ClientOptions {
        cipher_suites: suites.to_vec(),
        ..ClientOptions::default()
    }
}

async fn connect(addr: SocketAddr, opts: ClientOptions) -> Result<IpmiClient, IpmiError> {
    IpmiClient::connect(addr, "admin", "password", opts).await
}

/// Polls `cond` until it holds or 10 s pass.
async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn every_command_with_both_suites() {
    for suite in [CipherSuite::Sha1Aes, CipherSuite::Sha256Aes] {
        let bmc = Arc::new(FakeBmc::new(false));
        let srv = server(bmc.clone()).await;
        let mut c = connect(srv.local_addr(), options(&[suite])).await.unwrap();
        assert_eq!(c.cipher_suite(), suite);
        assert_eq!(c.privilege(), Privilege::Administrator);
        assert_eq!(srv.session_count(), 1);

        assert_eq!(c.device_id().await.unwrap(), DeviceId::default());
        assert!(!c.power_status().await.unwrap());
        c.chassis_control(ChassisAction::PowerUp).await.unwrap();
        assert!(bmc.power_state() && c.power_status().await.unwrap());
        for action in [
            ChassisAction::HardReset,
            ChassisAction::PowerCycle,
            ChassisAction::PulseDiag,
        ] {
            c.chassis_control(action).await.unwrap();
        }
        assert_eq!(bmc.snapshot().boots, 3, "power up, reset, cycle");
        c.chassis_control(ChassisAction::SoftShutdown)
            .await
            .unwrap();
        assert!(!c.power_status().await.unwrap());
        c.chassis_control(ChassisAction::PowerDown).await.unwrap();
        assert_eq!(
            bmc.snapshot().actions,
            [
                ChassisAction::PowerUp,
                ChassisAction::HardReset,
                ChassisAction::PowerCycle,
                ChassisAction::PulseDiag,
                ChassisAction::SoftShutdown,
                ChassisAction::PowerDown,
            ]
        );

        for device in [
            BootSource::Pxe,
            BootSource::Disk,
            BootSource::Cdrom,
            BootSource::Bios,
        ] {
            for (persistent, efi) in [(false, false), (true, false), (false, true)] {
                let want = BootDevice {
                    device,
                    persistent,
                    efi,
                };
                c.set_boot_device(want).await.unwrap();
                assert_eq!(bmc.snapshot().boot, want);
                assert_eq!(c.boot_device().await.unwrap(), want);
            }
        }

        c.close().await.unwrap();
        eventually("the session to be closed", || srv.session_count() == 0).await;
        srv.shutdown().await;
    }
}

#[tokio::test]
async fn suite_negotiation() {
    let bmc = Arc::new(FakeBmc::default());
    let srv = server(bmc.clone()).await;
    // Defaults: suite 17 when the BMC lists it, with or without asking.
    let c = connect(srv.local_addr(), ClientOptions::default())
        .await
        .unwrap();
    assert_eq!(c.cipher_suite(), CipherSuite::Sha256Aes);
    let blind = ClientOptions {
        query_cipher_suites: false,
        ..ClientOptions::default()
    };
    let c = connect(srv.local_addr(), blind.clone()).await.unwrap();
    assert_eq!(c.cipher_suite(), CipherSuite::Sha256Aes);

    // A BMC with suite 3 only: chosen from its list, or after its refusal of 17.
    let old = server_with(
        bmc,
        ServerOptions {
            cipher_suites: vec![CipherSuite::Sha1Aes],
            ..ServerOptions::default()
        },
    )
    .await;
    let c = connect(old.local_addr(), ClientOptions::default())
        .await
        .unwrap();
    assert_eq!(c.cipher_suite(), CipherSuite::Sha1Aes);
    let mut c = connect(old.local_addr(), blind).await.unwrap();
    assert_eq!(c.cipher_suite(), CipherSuite::Sha1Aes);
    c.power_status().await.unwrap();

    // Nothing in common.
    let err = connect(old.local_addr(), options(&[CipherSuite::Sha256Aes]))
        .await
        .err()
        .unwrap();
    assert!(matches!(err, IpmiError::Protocol(_)), "{err}");
}

#[tokio::test]
async fn failing_power_actions_are_completion_errors() {
    let bmc = Arc::new(FakeBmc::new(true));
    let srv = server(bmc.clone()).await;
    let mut c = connect(srv.local_addr(), ClientOptions::default())
        .await
        .unwrap();
    for code in [
        Completion::NOT_SUPPORTED_IN_PRESENT_STATE,
        Completion::UNSPECIFIED,
    ] {
        bmc.state().fail_power_actions = Some(code);
        let err = c
            .chassis_control(ChassisAction::PowerDown)
            .await
            .unwrap_err();
        assert_eq!(err.completion(), Some(code), "{err}");
        assert!(bmc.power_state());
    }
    bmc.state().fail_power_actions = None;
    bmc.state().fail_boot_device = Some(Completion::NODE_BUSY);
    let err = c
        .set_boot_device(BootDevice::once(BootSource::Pxe))
        .await
        .unwrap_err();
    assert_eq!(err.completion(), Some(Completion::NODE_BUSY));
    // Cycle while off: the FakeBmc's 0xD5.
    c.chassis_control(ChassisAction::PowerDown).await.unwrap();
    let err = c
        .chassis_control(ChassisAction::PowerCycle)
        .await
        .unwrap_err();
    assert_eq!(
        err.completion(),
        Some(Completion::NOT_SUPPORTED_IN_PRESENT_STATE)
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_auth_failures() {
    let srv = server(Arc::new(FakeBmc::default())).await;
    for suite in [CipherSuite::Sha1Aes, CipherSuite::Sha256Aes] {
        let err = IpmiClient::connect(srv.local_addr(), "admin", "passw0rd", options(&[suite]))
            .await
            .err()
            .unwrap();
        assert!(err.is_auth_failure(), "{err}");
        assert!(err.to_string().contains("wrong password"), "{err}");
        let err = IpmiClient::connect(srv.local_addr(), "nobody", "password", options(&[suite]))
            .await
            .err()
            .unwrap();
        assert!(err.is_auth_failure(), "{err}");
    }
    // The server let go of every failed session (the client aborts after a bad RAKP 2).
    eventually("failed sessions to be freed", || srv.session_count() == 0).await;
}

#[tokio::test]
async fn privilege_is_enforced() {
    let bmc = Arc::new(FakeBmc::default());
    let srv = server(bmc.clone()).await;
    let user = ClientOptions {
        privilege: Privilege::User,
        ..ClientOptions::default()
    };
    let mut c = connect(srv.local_addr(), user).await.unwrap();
    assert_eq!(c.privilege(), Privilege::User);
    assert!(!c.power_status().await.unwrap());
    let err = c.chassis_control(ChassisAction::PowerUp).await.unwrap_err();
    assert_eq!(err.completion(), Some(Completion::INSUFFICIENT_PRIVILEGE));
    assert!(!bmc.power_state());
}

#[tokio::test]
async fn unreachable_and_silent_bmcs() {
    // Nothing listens: loopback answers ICMP port unreachable.
    let closed = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let fast = ClientOptions {
        timeout: Duration::from_millis(200),
        retries: 1,
        ..ClientOptions::default()
    };
    let err = connect(addr, fast.clone()).await.err().unwrap();
    assert!(matches!(err, IpmiError::Unreachable { .. }), "{err}");

    // Something listens and never answers.
    let silent = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let err = connect(silent.local_addr().unwrap(), fast)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, IpmiError::Timeout { attempts: 2, .. }),
        "{err}"
    );

    // Arguments the protocol cannot carry.
    let err = IpmiClient::connect(addr, "a-user-name-of-17", "pw", ClientOptions::default())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, IpmiError::InvalidArgument(_)), "{err}");
}

#[tokio::test]
async fn backend_password_and_reachability_faults() {
    let bmc = Arc::new(FakeBmc::new(false));
    let srv = server(bmc.clone()).await;
    let addr = srv.local_addr();
    let fast = ClientOptions {
        timeout: Duration::from_millis(200),
        retries: 1,
        ..ClientOptions::default()
    };
    let mut old = connect(addr, fast.clone()).await.unwrap();
    assert!(!old.power_status().await.unwrap());

    // The backend's password replaces the server's: the old one is refused, the new one
    // admitted, and the session opened with the old one is over.
    bmc.state().password = Some("rotated".into());
    let err = connect(addr, fast.clone()).await.err().unwrap();
    assert!(err.is_auth_failure(), "{err}");
    let mut new = IpmiClient::connect(addr, "admin", "rotated", fast.clone())
        .await
        .unwrap();
    new.chassis_control(ChassisAction::PowerUp).await.unwrap();
    assert!(bmc.power_state());
    let err = old.power_status().await.err().unwrap();
    assert!(matches!(err, IpmiError::Timeout { .. }), "{err}");
    bmc.state().password = None;
    let err = new.power_status().await.err().unwrap();
    assert!(matches!(err, IpmiError::Timeout { .. }), "{err}");

    // Unreachable: nothing is answered, not even a session set-up; then it answers again.
    let mut c = connect(addr, fast.clone()).await.unwrap();
    bmc.state().unreachable = true;
    let err = connect(addr, fast.clone()).await.err().unwrap();
    assert!(matches!(err, IpmiError::Timeout { .. }), "{err}");
    let err = c.power_status().await.err().unwrap();
    assert!(matches!(err, IpmiError::Timeout { .. }), "{err}");
    bmc.state().unreachable = false;
    assert!(c.power_status().await.unwrap());
    assert!(connect(addr, fast)
        .await
        .unwrap()
        .power_status()
        .await
        .unwrap());
}

/// Which server answers a relay loses: it passes `pass` answers, then drops `drop`.
#[derive(Default)]
struct Loss {
    pass: usize,
    drop: usize,
}

/// A UDP relay between one client and a server: it loses answers as `loss` says, records what
/// the client sent, and can send a recorded datagram again from the same address (a replay).
struct Relay {
    addr: SocketAddr,
    loss: Arc<Mutex<Loss>>,
    sent: Arc<Mutex<Vec<Vec<u8>>>>,
    replays: tokio::sync::mpsc::UnboundedSender<(Vec<u8>, tokio::sync::oneshot::Sender<()>)>,
}

impl Relay {
    /// Sends `datagram` to the server from the relay's address; returns once it is sent.
    async fn replay(&self, datagram: Vec<u8>) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.replays.send((datagram, tx)).unwrap();
        rx.await.unwrap();
    }
}

async fn lossy_relay(server: SocketAddr) -> Relay {
    let front = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let back = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    back.connect(server).await.unwrap();
    let (replays, mut replay_rx) = tokio::sync::mpsc::unbounded_channel::<(Vec<u8>, _)>();
    let relay = Relay {
        addr: front.local_addr().unwrap(),
        loss: Arc::default(),
        sent: Arc::default(),
        replays,
    };
    let (plan, sent) = (relay.loss.clone(), relay.sent.clone());
    tokio::spawn(async move {
        let (mut a, mut b) = (vec![0u8; 2048], vec![0u8; 2048]);
        let mut client = None;
        loop {
            tokio::select! {
                Ok((n, from)) = front.recv_from(&mut a) => {
                    client = Some(from);
                    sent.lock().unwrap().push(a[..n].to_vec());
                    let _ = back.send(&a[..n]).await;
                }
                Some((datagram, done)) = replay_rx.recv() => {
                    let _ = back.send(&datagram).await;
                    let _ = done.send(());
                }
                Ok(n) = back.recv(&mut b) => {
                    let lose = {
                        let mut p = plan.lock().unwrap();
                        if p.pass > 0 {
                            p.pass -= 1;
                            false
                        } else if p.drop > 0 {
                            p.drop -= 1;
                            true
                        } else {
                            false
                        }
                    };
                    if let (false, Some(to)) = (lose, client) {
                        let _ = front.send_to(&b[..n], to).await;
                    }
                }
            }
        }
    });
    relay
}

fn lose(loss: &Mutex<Loss>, pass: usize, drop: usize) {
    *loss.lock().unwrap() = Loss { pass, drop };
}

fn all_lost(loss: &Mutex<Loss>) -> bool {
    loss.lock().unwrap().drop == 0
}

#[tokio::test]
async fn a_retransmitted_command_runs_once() {
    let bmc = Arc::new(FakeBmc::new(true));
    let srv = server(bmc.clone()).await;
    let relay = lossy_relay(srv.local_addr()).await;
    let loss = &relay.loss;
    let opts = ClientOptions {
        timeout: Duration::from_millis(300),
        ..ClientOptions::default()
    };
    let mut c = connect(relay.addr, opts).await.unwrap();
    // Lose the answer to a power cycle: the client retransmits (new session sequence number,
    // same request), the server answers from its cache instead of cycling again.
    lose(loss, 0, 1);
    c.chassis_control(ChassisAction::PowerCycle).await.unwrap();
    assert!(all_lost(loss));
    assert_eq!(bmc.snapshot().actions, [ChassisAction::PowerCycle]);
    assert_eq!(bmc.snapshot().boots, 1);
    // The next identical request is a new one (new requester sequence): it runs.
    c.chassis_control(ChassisAction::PowerCycle).await.unwrap();
    assert_eq!(bmc.snapshot().boots, 2);
}

#[tokio::test]
async fn setup_survives_a_lost_answer_at_every_step() {
    let bmc = Arc::new(FakeBmc::default());
    let srv = server(bmc).await;
    let relay = lossy_relay(srv.local_addr()).await;
    let loss = &relay.loss;
    let opts = ClientOptions {
        timeout: Duration::from_millis(300),
        query_cipher_suites: false,
        ..ClientOptions::default()
    };
    // Set-up is five exchanges: auth capabilities, Open Session, RAKP 1/2, RAKP 3/4, Set
    // Session Privilege Level. Lose the answer to each in turn: the step is retransmitted
    // and answered the same (the server keeps one session, not one per retransmission).
    for step in 0..5 {
        lose(loss, step, 1);
        let mut c = connect(relay.addr, opts.clone()).await.unwrap();
        assert!(all_lost(loss), "step {step}");
        assert!(!c.power_status().await.unwrap());
        c.close().await.unwrap();
        eventually("one session at a time", || srv.session_count() == 0).await;
    }
}
#[tokio::test]
async fn replayed_and_tampered_commands_are_dropped() {
    let bmc = Arc::new(FakeBmc::new(false));
    let srv = server(bmc.clone()).await;
    let relay = lossy_relay(srv.local_addr()).await;
    let mut c = connect(relay.addr, ClientOptions::default()).await.unwrap();
    c.chassis_control(ChassisAction::PowerUp).await.unwrap();
    let power_up = relay.sent.lock().unwrap().last().unwrap().clone();
    c.chassis_control(ChassisAction::PowerDown).await.unwrap();
    // The recorded "power up", sent again from the client's address: its session sequence
    // number was seen. And the same with one ciphertext bit flipped (a new sequence number
    // would need the integrity key): the AuthCode fails.
    relay.replay(power_up.clone()).await;
    let mut tampered = power_up;
    tampered[30] ^= 0x01;
    relay.replay(tampered).await;
    // Datagrams from one socket are handled in order: once this answers, those were judged.
    assert!(!c.power_status().await.unwrap());
    assert_eq!(
        bmc.snapshot().actions,
        [ChassisAction::PowerUp, ChassisAction::PowerDown]
    );
}

#[tokio::test]
async fn answers_asf_presence_ping() {
    let srv = server(Arc::new(FakeBmc::default())).await;
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    sock.send_to(&asf_presence_ping(42), srv.local_addr())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(is_asf_pong(&buf[..n], 42));
}
