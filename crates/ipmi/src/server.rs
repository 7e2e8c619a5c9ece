//! The BMC side: `IpmiServer` answers IPMI 2.0 / RMCP+ on one UDP socket for one machine,
//! whose power and boot device live behind a `BmcBackend`.
//!
//! A sans-I/O `Engine` turns each datagram into at most one answer, so the protocol is tested
//! without sockets or clocks; the server's task only moves datagrams and ticks session expiry.
//! Per peer, the conversation is: pre-session commands (channel authentication capabilities,
//! cipher suites) in either wrapper; Open Session; RAKP 1/2; RAKP 3/4; then protected IPMI
//! messages until Close Session or idleness. Every set-up step answers a retransmission of the
//! same request with the same answer, and a retransmitted command (same requester sequence,
//! command and data, new session sequence) gets the cached response without being executed
//! twice: a lost answer to "power cycle" must not cycle the machine again.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, info};

use crate::commands::{self, AuthCaps};
use crate::crypto::{self, CipherSuite, RakpInputs, SeqWindow, SessionKeys};
use crate::error::IpmiError;
use crate::rmcpplus::{
    self, status, OpenSessionRequest, OpenSessionResponse, Rakp1, Rakp2, Rakp34,
};
use crate::types::{BootDevice, ChassisAction, Completion, DeviceId, Privilege};
use crate::wire::{self, cmd, netfn, payload, Message, V2};

/// The machine an `IpmiServer` fronts. Calls come from the server's task, one at a time per
/// server, and must not block for long (the simulator's backends are in memory).
pub trait BmcBackend: Send + Sync {
    /// Whether the machine is powered on. A pure read.
    fn power_state(&self) -> bool;

    /// Carries out a Chassis Control action; `Err` is the completion code to answer.
    ///
    /// Idempotency: `PowerUp` when on, `PowerDown`/`SoftShutdown` when off must succeed and
    /// change nothing (consoles re-send these to converge). `PowerCycle`, `HardReset` and
    /// `PulseDiag` are not idempotent; the server never replays one request twice (it answers a
    /// retransmission from its cache), but a console may well send a new request for the same
    /// action.
    fn chassis_control(&self, action: ChassisAction) -> Result<(), Completion>;

    /// The boot device override (boot options parameter 5). A pure read.
    fn boot_device(&self) -> BootDevice;

    /// Replaces the boot device override. Idempotent: the last write wins. `Err` is the
    /// completion code to answer.
    fn set_boot_device(&self, device: BootDevice) -> Result<(), Completion>;

    /// What Get Device ID reports. A pure read.
    fn device_id(&self) -> DeviceId {
        DeviceId::default()
    }

    /// The password in force, when the machine's own replaces the one in the server's
    /// [`Credentials`] (a simulated host whose password was changed under it). `None`: the
    /// server's. Read at every session set-up and on every in-session packet; a session
    /// authenticated with another password is ended (its packets are dropped), as a password
    /// change ends a real BMC's sessions. A pure read.
    fn password(&self) -> Option<String> {
        None
    }

    /// Whether the BMC answers at all. `false` (a simulated network fault): every datagram is
    /// dropped unanswered, sessions included, as for a BMC off the network; sessions resume
    /// when it turns `true` again, unless they idled out meanwhile. A pure read.
    fn reachable(&self) -> bool {
        true
    }
}

/// The one user an `IpmiServer` admits, at up to ADMINISTRATOR privilege.
#[derive(Clone)]
pub struct Credentials {
    /// At most 16 bytes (IPMI user names).
    pub username: String,
    /// At most 20 bytes (IPMI 2.0 passwords): the RAKP key Kuid.
    pub password: String,
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    pub(crate) fn check(username: &str, password: &str) -> Result<(), IpmiError> {
        if username.len() > 16 {
            return Err(IpmiError::InvalidArgument(
                "IPMI user names are at most 16 bytes".into(),
            ));
        }
        if password.len() > 20 {
            return Err(IpmiError::InvalidArgument(
                "IPMI 2.0 passwords are at most 20 bytes".into(),
            ));
        }
        Ok(())
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Server tunables; `Default` suits a simulated BMC.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Sessions (in set-up or active) at once; an Open Session beyond it is refused with
    /// "insufficient resources" after idle ones are expired. Real BMCs allow 4–16.
    pub max_sessions: usize,
    /// A session with no valid packet for this long is forgotten. The spec's default session
    /// inactivity timeout is 60 s.
    pub idle_timeout: Duration,
    /// The system GUID sent in RAKP 2 (and hashed into RAKP 2/4).
    pub guid: [u8; 16],
    /// Cipher suites offered, in the order Get Channel Cipher Suites lists them.
    pub cipher_suites: Vec<CipherSuite>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_sessions: 16,
            idle_timeout: Duration::from_secs(60),
            guid: crypto::random::<16>(),
            cipher_suites: vec![CipherSuite::Sha256Aes, CipherSuite::Sha1Aes],
        }
    }
}

/// An IPMI BMC serving on a UDP socket until `shutdown` (or drop).
pub struct IpmiServer {
    local_addr: SocketAddr,
    sessions: Arc<AtomicUsize>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl IpmiServer {
    /// Binds `addr` (port 0 for an ephemeral one) and serves with the default options.
    pub async fn bind(
        addr: SocketAddr,
        credentials: Credentials,
        backend: Arc<dyn BmcBackend>,
    ) -> Result<IpmiServer, IpmiError> {
        IpmiServer::bind_with(addr, credentials, backend, ServerOptions::default()).await
    }

    pub async fn bind_with(
        addr: SocketAddr,
        credentials: Credentials,
        backend: Arc<dyn BmcBackend>,
        options: ServerOptions,
    ) -> Result<IpmiServer, IpmiError> {
        Credentials::check(&credentials.username, &credentials.password)?;
        let socket = UdpSocket::bind(addr).await.map_err(IpmiError::Io)?;
        let local_addr = socket.local_addr().map_err(IpmiError::Io)?;
        let sessions = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = oneshot::channel();
        let engine = Engine::new(credentials, backend, options);
        let task = tokio::spawn(serve(socket, engine, rx, sessions.clone()));
        info!(%local_addr, "IPMI server listening");
        Ok(IpmiServer {
            local_addr,
            sessions,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Sessions currently held (in set-up or active), as of the last datagram or expiry tick.
    pub fn session_count(&self) -> usize {
        self.sessions.load(Ordering::Relaxed)
    }

    /// Stops serving and waits for the socket to be closed.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for IpmiServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

async fn serve(
    socket: UdpSocket,
    mut engine: Engine,
    mut shutdown: oneshot::Receiver<()>,
    count: Arc<AtomicUsize>,
) {
    let mut buf = vec![0u8; 2048];
    let mut tick =
        tokio::time::interval((engine.options.idle_timeout / 4).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            _ = tick.tick() => engine.expire(Instant::now()),
            received = socket.recv_from(&mut buf) => match received {
                Ok((n, peer)) => {
                    if let Some(answer) = engine.handle(&buf[..n], peer, Instant::now()) {
                        if let Err(e) = socket.send_to(&answer, peer).await {
                            debug!(%peer, error = %e, "IPMI answer not sent");
                        }
                    }
                }
                // An ICMP error for an earlier answer, or a datagram too large: keep serving.
                Err(e) => debug!(error = %e, "IPMI receive error"),
            },
        }
        count.store(engine.sessions.len(), Ordering::Relaxed);
    }
}

/// An RMCP+ session, from Open Session to Close Session or expiry. Keyed by the BMC's session
/// ID and bound to the peer address that opened it.
struct Session {
    peer: SocketAddr,
    console_id: u32,
    suite: CipherSuite,
    /// The most the console asked for in Open Session (and we granted).
    max_privilege: Privilege,
    open_response: Vec<u8>,
    last_activity: Instant,
    stage: Stage,
}

enum Stage {
    /// Open Session answered; waiting for RAKP 1.
    Opened,
    /// RAKP 2 sent; waiting for RAKP 3.
    Challenged {
        rakp1: Rakp1,
        inputs: RakpInputs,
        rakp2: Vec<u8>,
        /// The password (Kuid) RAKP 2 was computed with.
        kuid: Vec<u8>,
    },
    Active(Box<Active>),
}

struct Active {
    inputs: RakpInputs,
    /// The password (Kuid) the session was authenticated with: when the one in force differs,
    /// the session is over.
    kuid: Vec<u8>,
    keys: SessionKeys,
    rakp4: Vec<u8>,
    privilege: Privilege,
    /// The RAKP 1 role's privilege: Set Session Privilege Level may not exceed it.
    limit: Privilege,
    window: SeqWindow,
    out_seq: u32,
    /// The last request and its response, for retransmissions.
    last: Option<(Message, Message)>,
}

/// What a command asks of the session table beyond its answer.
enum After {
    Nothing,
    Close(u32),
}

/// The protocol state machine of one BMC, without I/O.
pub(crate) struct Engine {
    credentials: Credentials,
    backend: Arc<dyn BmcBackend>,
    options: ServerOptions,
    sessions: HashMap<u32, Session>,
}

impl Engine {
    pub(crate) fn new(
        credentials: Credentials,
        backend: Arc<dyn BmcBackend>,
        options: ServerOptions,
    ) -> Engine {
        Engine {
            credentials,
            backend,
            options,
            sessions: HashMap::new(),
        }
    }

    /// The password in force (Kuid): the backend's, else the server's.
    fn kuid(&self) -> Vec<u8> {
        self.backend
            .password()
            .unwrap_or_else(|| self.credentials.password.clone())
            .into_bytes()
    }

    /// Forgets sessions idle for longer than the idle timeout.
    pub(crate) fn expire(&mut self, now: Instant) {
        let idle = self.options.idle_timeout;
        self.sessions.retain(|id, s| {
            let keep = now.saturating_duration_since(s.last_activity) < idle;
            if !keep {
                debug!(session = id, peer = %s.peer, "IPMI session expired");
            }
            keep
        });
    }

    /// Makes room by forgetting the session in set-up that has waited longest: consoles that
    /// gave up mid-handshake (ipmitool, on a wrong password, never sends RAKP 3) must not lock
    /// others out until their idle timeout. Active sessions are never evicted.
    fn evict_stalest_setup(&mut self) -> bool {
        let stalest = self
            .sessions
            .iter()
            .filter(|(_, s)| !matches!(s.stage, Stage::Active(_)))
            .min_by_key(|(_, s)| s.last_activity)
            .map(|(id, _)| *id);
        if let Some(id) = stalest {
            debug!(
                session = id,
                "RMCP+ session in set-up evicted for a new one"
            );
            self.sessions.remove(&id);
        }
        stalest.is_some()
    }

    /// The answer to one datagram, if any. Malformed, unauthenticated or replayed packets get
    /// none (answering would help an attacker probe).
    pub(crate) fn handle(
        &mut self,
        datagram: &[u8],
        peer: SocketAddr,
        now: Instant,
    ) -> Option<Vec<u8>> {
        if !self.backend.reachable() {
            return None;
        }
        let (class, body) = wire::split_rmcp(datagram).ok()?;
        match class {
            wire::RMCP_CLASS_ASF => wire::asf_pong_for(body),
            wire::RMCP_CLASS_IPMI if body.first() == Some(&wire::AUTH_TYPE_RMCP_PLUS) => {
                let v2 = wire::decode_v2(body).ok()?;
                self.handle_v2(&v2, peer, now)
            }
            wire::RMCP_CLASS_IPMI => {
                // IPMI v1.5 wrapper: only outside a session (no v1.5 sessions here).
                let v15 = wire::decode_v15(body).ok()?;
                if v15.session_id != 0 || v15.auth_type != wire::AUTH_TYPE_NONE {
                    return None;
                }
                let rq = Message::decode(v15.message).ok()?;
                let rs = self.sessionless(&rq)?;
                Some(wire::encode_v15(&rs.encode()))
            }
            _ => None,
        }
    }

    fn handle_v2(&mut self, v2: &V2<'_>, peer: SocketAddr, now: Instant) -> Option<Vec<u8>> {
        let plain = |ptype: u8, bytes: Vec<u8>| Some(wire::encode_v2_plain(ptype, &bytes));
        match v2.payload_type {
            payload::OPEN_SESSION_REQUEST => {
                let rq = OpenSessionRequest::decode(v2.payload).ok()?;
                plain(
                    payload::OPEN_SESSION_RESPONSE,
                    self.open_session(&rq, peer, now),
                )
            }
            payload::RAKP1 => {
                let rq = Rakp1::decode(v2.payload).ok()?;
                plain(payload::RAKP2, self.rakp1(&rq, peer, now))
            }
            payload::RAKP3 => {
                let rq = Rakp34::decode(v2.payload).ok()?;
                plain(payload::RAKP4, self.rakp3(&rq, peer, now)?)
            }
            payload::IPMI if v2.session_id == 0 => {
                if v2.authenticated || v2.encrypted {
                    return None;
                }
                let rq = Message::decode(v2.payload).ok()?;
                plain(payload::IPMI, self.sessionless(&rq)?.encode())
            }
            payload::IPMI => self.session_message(v2, peer, now),
            _ => None,
        }
    }

    /// Commands answered outside a session (and inside one).
    fn sessionless(&self, rq: &Message) -> Option<Message> {
        if rq.is_response() {
            return None;
        }
        let (code, data) = match (rq.netfn, rq.cmd) {
            (netfn::APP, cmd::GET_CHANNEL_AUTH_CAPABILITIES) => auth_caps(&rq.data),
            (netfn::APP, cmd::GET_CHANNEL_CIPHER_SUITES) => {
                cipher_suites(&rq.data, &self.options.cipher_suites)
            }
            // Including the IPMI v1.5 session commands (Get Session Challenge, Activate
            // Session): only RMCP+ sessions are served.
            _ => (Completion::INVALID_COMMAND, Vec::new()),
        };
        Some(rq.response(code.0, &data))
    }

    fn open_session(&mut self, rq: &OpenSessionRequest, peer: SocketAddr, now: Instant) -> Vec<u8> {
        // A retransmission: the same answer, not a second session.
        if let Some(s) = self.sessions.values().find(|s| {
            s.peer == peer
                && s.console_id == rq.console_session_id
                && matches!(s.stage, Stage::Opened)
        }) {
            return s.open_response.clone();
        }
        let refuse = |code: u8| {
            debug!(%peer, status = rmcpplus::status_name(code), "RMCP+ Open Session refused");
            OpenSessionResponse {
                tag: rq.tag,
                status: code,
                max_privilege: 0,
                console_session_id: rq.console_session_id,
                bmc_session_id: 0,
                algorithms: (0, 0, 0),
            }
            .encode()
        };
        let (auth, integrity, conf) = rq.algorithms;
        let Some(suite) = CipherSuite::from_algorithms(auth, integrity, conf)
            .filter(|s| self.options.cipher_suites.contains(s))
        else {
            return refuse(status::NO_CIPHER_SUITE_MATCH);
        };
        let max_privilege = match rq.max_privilege {
            // "The highest level matching the proposed algorithms."
            0 => Privilege::Administrator,
            level => match Privilege::from_level(level) {
                Some(p) if p <= Privilege::Administrator => p,
                _ => return refuse(status::INVALID_ROLE),
            },
        };
        if rq.console_session_id == 0 {
            return refuse(status::INVALID_SESSION_ID);
        }
        if self.sessions.len() >= self.options.max_sessions {
            self.expire(now);
        }
        if self.sessions.len() >= self.options.max_sessions && !self.evict_stalest_setup() {
            return refuse(status::INSUFFICIENT_RESOURCES);
        }
        let bmc_id = loop {
            let id = crypto::random_session_id();
            if !self.sessions.contains_key(&id) {
                break id;
            }
        };
        let response = OpenSessionResponse {
            tag: rq.tag,
            status: status::OK,
            max_privilege: max_privilege.level(),
            console_session_id: rq.console_session_id,
            bmc_session_id: bmc_id,
            algorithms: rq.algorithms,
        }
        .encode();
        debug!(%peer, session = bmc_id, suite = suite.id(), "RMCP+ session opened");
        self.sessions.insert(
            bmc_id,
            Session {
                peer,
                console_id: rq.console_session_id,
                suite,
                max_privilege,
                open_response: response.clone(),
                last_activity: now,
                stage: Stage::Opened,
            },
        );
        response
    }

    fn rakp1(&mut self, rq: &Rakp1, peer: SocketAddr, now: Instant) -> Vec<u8> {
        let kuid = self.kuid();
        let refuse = |console_session_id: u32, code: u8| {
            debug!(%peer, status = rmcpplus::status_name(code), "RAKP 1 refused");
            Rakp2 {
                tag: rq.tag,
                status: code,
                console_session_id,
                bmc_random: [0; 16],
                bmc_guid: [0; 16],
                auth_code: Vec::new(),
            }
            .encode()
        };
        let Some(session) = self
            .sessions
            .get_mut(&rq.bmc_session_id)
            .filter(|s| s.peer == peer)
        else {
            return refuse(0, status::INVALID_SESSION_ID);
        };
        let console_id = session.console_id;
        match &session.stage {
            Stage::Opened => {}
            Stage::Challenged { rakp1, rakp2, .. } if rakp1 == rq => return rakp2.clone(),
            // A new RAKP 1 on a session past Open Session: the console starts over elsewhere.
            _ => return refuse(console_id, status::INVALID_SESSION_ID),
        }
        let refusal = match Privilege::from_level(rq.role & 0x0F) {
            None => Some(status::INVALID_ROLE),
            Some(p) if p > session.max_privilege => Some(status::UNAUTHORIZED_ROLE),
            Some(_) if rq.username.len() > 16 => Some(status::INVALID_NAME_LENGTH),
            // Unknown (or null) user names; we only know one user.
            Some(_) if rq.username != self.credentials.username.as_bytes() => {
                Some(status::UNAUTHORIZED_NAME)
            }
            Some(_) => None,
        };
        if let Some(code) = refusal {
            self.sessions.remove(&rq.bmc_session_id);
            return refuse(console_id, code);
        }
        let inputs = RakpInputs {
            suite: session.suite,
            console_session_id: console_id,
            bmc_session_id: rq.bmc_session_id,
            console_random: rq.console_random,
            bmc_random: crypto::random::<16>(),
            bmc_guid: self.options.guid,
            role: rq.role,
            username: rq.username.clone(),
        };
        let rakp2 = Rakp2 {
            tag: rq.tag,
            status: status::OK,
            console_session_id: console_id,
            bmc_random: inputs.bmc_random,
            bmc_guid: inputs.bmc_guid,
            auth_code: inputs.rakp2_auth_code(&kuid),
        }
        .encode();
        session.last_activity = now;
        session.stage = Stage::Challenged {
            rakp1: rq.clone(),
            inputs,
            rakp2: rakp2.clone(),
            kuid,
        };
        rakp2
    }

    fn rakp3(&mut self, rq: &Rakp34, peer: SocketAddr, now: Instant) -> Option<Vec<u8>> {
        let refuse = |console_session_id: u32, code: u8| {
            debug!(%peer, status = rmcpplus::status_name(code), "RAKP 3 refused");
            Rakp34 {
                tag: rq.tag,
                status: code,
                session_id: console_session_id,
                code: Vec::new(),
            }
            .encode()
        };
        let Some(session) = self
            .sessions
            .get_mut(&rq.session_id)
            .filter(|s| s.peer == peer)
        else {
            return Some(refuse(0, status::INVALID_SESSION_ID));
        };
        let console_id = session.console_id;
        let (inputs, kuid) = match &session.stage {
            Stage::Opened => return Some(refuse(console_id, status::INVALID_SESSION_ID)),
            Stage::Challenged { inputs, kuid, .. } => (inputs.clone(), kuid.clone()),
            // A retransmitted RAKP 3 (our RAKP 4 was lost): the same RAKP 4.
            Stage::Active(active) => {
                let genuine = crypto::ct_eq(&active.inputs.rakp3_auth_code(&active.kuid), &rq.code);
                return genuine.then(|| active.rakp4.clone());
            }
        };
        if rq.status != status::OK {
            // The console rejected our RAKP 2 (e.g. a wrong password on its side).
            debug!(%peer, status = rmcpplus::status_name(rq.status), "console aborted RAKP");
            self.sessions.remove(&rq.session_id);
            return None;
        }
        if !crypto::ct_eq(&inputs.rakp3_auth_code(&kuid), &rq.code) {
            self.sessions.remove(&rq.session_id);
            return Some(refuse(console_id, status::INVALID_INTEGRITY_CHECK_VALUE));
        }
        let sik = inputs.sik(&kuid);
        let rakp4 = Rakp34 {
            tag: rq.tag,
            status: status::OK,
            session_id: console_id,
            code: inputs.rakp4_icv(&sik),
        }
        .encode();
        // RMCP+ sessions start at USER (or below, if that is all that was asked for).
        let limit = Privilege::from_level(inputs.role & 0x0F).unwrap_or(Privilege::User);
        debug!(%peer, session = rq.session_id, "RMCP+ session active");
        session.last_activity = now;
        session.stage = Stage::Active(Box::new(Active {
            keys: SessionKeys::derive(inputs.suite, &sik),
            inputs,
            kuid,
            rakp4: rakp4.clone(),
            privilege: limit.min(Privilege::User),
            limit,
            window: SeqWindow::default(),
            out_seq: 0,
            last: None,
        }));
        Some(rakp4)
    }

    fn session_message(&mut self, v2: &V2<'_>, peer: SocketAddr, now: Instant) -> Option<Vec<u8>> {
        let bmc_id = v2.session_id;
        let kuid = self.kuid();
        let session = self.sessions.get_mut(&bmc_id).filter(|s| s.peer == peer)?;
        let Stage::Active(active) = &mut session.stage else {
            return None;
        };
        if !crypto::ct_eq(&active.kuid, &kuid) {
            // The password changed under the session: it is over.
            debug!(%peer, session = bmc_id, "RMCP+ session ended by a password change");
            self.sessions.remove(&bmc_id);
            return None;
        }
        let plain = match rmcpplus::open(&active.keys, v2) {
            Ok(plain) => plain,
            Err(e) => {
                debug!(%peer, session = bmc_id, error = %e, "IPMI packet dropped");
                return None;
            }
        };
        if !active.window.accept(v2.seq) {
            debug!(%peer, session = bmc_id, seq = v2.seq, "IPMI packet replayed or out of window");
            return None;
        }
        session.last_activity = now;
        let rq = Message::decode(&plain).ok().filter(|m| !m.is_response())?;
        let (response, after) = match &active.last {
            Some((last_rq, last_rs)) if *last_rq == rq => (last_rs.clone(), After::Nothing),
            _ => {
                let (code, data, after) =
                    command(&self.backend, &self.options, active, bmc_id, &rq);
                let response = rq.response(code.0, &data);
                active.last = Some((rq, response.clone()));
                (response, after)
            }
        };
        active.out_seq = active.out_seq.wrapping_add(1).max(1);
        let answer = rmcpplus::seal(
            &active.keys,
            payload::IPMI,
            session.console_id,
            active.out_seq,
            &response.encode(),
        );
        if let After::Close(id) = after {
            self.sessions.remove(&id);
            debug!(%peer, session = id, "RMCP+ session closed");
        }
        Some(answer)
    }
}

/// One in-session command: its completion code, response data, and effect on the table.
fn command(
    backend: &Arc<dyn BmcBackend>,
    options: &ServerOptions,
    session: &mut Active,
    bmc_id: u32,
    rq: &Message,
) -> (Completion, Vec<u8>, After) {
    let ok = |data: Vec<u8>| (Completion::OK, data, After::Nothing);
    let fail = |code: Completion| (code, Vec::new(), After::Nothing);
    let needed = match (rq.netfn, rq.cmd) {
        (netfn::CHASSIS, cmd::CHASSIS_CONTROL | cmd::SET_SYSTEM_BOOT_OPTIONS) => {
            Privilege::Operator
        }
        (netfn::APP, cmd::GET_DEVICE_ID)
        | (netfn::CHASSIS, cmd::GET_CHASSIS_STATUS | cmd::GET_SYSTEM_BOOT_OPTIONS) => {
            Privilege::User
        }
        _ => Privilege::Callback,
    };
    if session.privilege < needed {
        return fail(Completion::INSUFFICIENT_PRIVILEGE);
    }
    let data = &rq.data[..];
    match (rq.netfn, rq.cmd) {
        (netfn::APP, cmd::GET_CHANNEL_AUTH_CAPABILITIES) => {
            let (code, data) = auth_caps(data);
            (code, data, After::Nothing)
        }
        (netfn::APP, cmd::GET_CHANNEL_CIPHER_SUITES) => {
            let (code, data) = cipher_suites(data, &options.cipher_suites);
            (code, data, After::Nothing)
        }
        (netfn::APP, cmd::GET_DEVICE_ID) => ok(commands::encode_device_id(&backend.device_id())),
        (netfn::APP, cmd::SET_SESSION_PRIVILEGE_LEVEL) => {
            let Some(&level) = data.first() else {
                return fail(Completion::REQUEST_DATA_LENGTH_INVALID);
            };
            match level & 0x0F {
                // "No change": report the present level.
                0 => {}
                level => match Privilege::from_level(level) {
                    None | Some(Privilege::Oem) | Some(Privilege::Callback) => {
                        return fail(Completion::PARAMETER_NOT_SUPPORTED)
                    }
                    Some(p) if p > session.limit => {
                        return fail(Completion::PRIVILEGE_EXCEEDS_LIMIT)
                    }
                    Some(p) => session.privilege = p,
                },
            }
            ok(vec![session.privilege.level()])
        }
        (netfn::APP, cmd::CLOSE_SESSION) => {
            if data.len() < 4 {
                return fail(Completion::REQUEST_DATA_LENGTH_INVALID);
            }
            let id = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
            // Closing one's own session; closing others' is not offered.
            if id != bmc_id {
                return fail(Completion::INVALID_SESSION_ID);
            }
            (Completion::OK, Vec::new(), After::Close(id))
        }
        (netfn::CHASSIS, cmd::GET_CHASSIS_STATUS) => {
            ok(commands::encode_chassis_status(backend.power_state()))
        }
        (netfn::CHASSIS, cmd::CHASSIS_CONTROL) => {
            let Some(&byte) = data.first() else {
                return fail(Completion::REQUEST_DATA_LENGTH_INVALID);
            };
            let Some(action) = ChassisAction::from_code(byte & 0x0F) else {
                return fail(Completion::INVALID_DATA_FIELD);
            };
            match backend.chassis_control(action) {
                Ok(()) => ok(Vec::new()),
                Err(code) => fail(code),
            }
        }
        (netfn::CHASSIS, cmd::SET_SYSTEM_BOOT_OPTIONS) => set_boot_options(backend, data),
        (netfn::CHASSIS, cmd::GET_SYSTEM_BOOT_OPTIONS) => {
            let Some(&param) = data.first() else {
                return fail(Completion::REQUEST_DATA_LENGTH_INVALID);
            };
            let param = param & 0x7F;
            // Parameter version 1, the selector (bit 7 clear: valid), then the data.
            let mut out = vec![0x01, param];
            match param {
                BOOT_PARAM_SET_IN_PROGRESS | BOOT_PARAM_VALID_BIT_CLEARING => out.push(0),
                BOOT_PARAM_INFO_ACK => out.extend_from_slice(&[0, 0]),
                BOOT_PARAM_FLAGS => {
                    out.extend_from_slice(&commands::encode_boot_flags(backend.boot_device()))
                }
                _ => return fail(Completion::PARAMETER_NOT_SUPPORTED),
            }
            ok(out)
        }
        _ => fail(Completion::INVALID_COMMAND),
    }
}

/// Boot option parameters (table 28-14) we keep or accept.
const BOOT_PARAM_SET_IN_PROGRESS: u8 = 0;
const BOOT_PARAM_INFO_ACK: u8 = 3;
const BOOT_PARAM_VALID_BIT_CLEARING: u8 = 4;
const BOOT_PARAM_FLAGS: u8 = 5;

/// Set System Boot Options. Parameter 5 (boot flags) reaches the backend; the ones ipmitool
/// writes around it (set-in-progress 0, boot info acknowledge 3, valid-bit clearing 4) are
/// accepted and not kept: their only effect on a real BMC is on what the BIOS sees.
fn set_boot_options(backend: &Arc<dyn BmcBackend>, data: &[u8]) -> (Completion, Vec<u8>, After) {
    let Some(&param) = data.first() else {
        return (
            Completion::REQUEST_DATA_LENGTH_INVALID,
            Vec::new(),
            After::Nothing,
        );
    };
    let (needed, result) = match param & 0x7F {
        BOOT_PARAM_SET_IN_PROGRESS | BOOT_PARAM_VALID_BIT_CLEARING => (2, Ok(())),
        BOOT_PARAM_INFO_ACK => (3, Ok(())),
        BOOT_PARAM_FLAGS if data.len() >= 6 => match commands::decode_boot_flags(&data[1..6]) {
            Ok(dev) => (6, backend.set_boot_device(dev)),
            Err(_) => (6, Err(Completion::INVALID_DATA_FIELD)),
        },
        BOOT_PARAM_FLAGS => (6, Ok(())),
        _ => (0, Err(Completion::PARAMETER_NOT_SUPPORTED)),
    };
    let code = if data.len() < needed {
        Completion::REQUEST_DATA_LENGTH_INVALID
    } else {
        result.err().unwrap_or(Completion::OK)
    };
    (code, Vec::new(), After::Nothing)
}

fn channel_ok(byte: u8) -> bool {
    matches!(
        byte & 0x0F,
        commands::CURRENT_CHANNEL | commands::LAN_CHANNEL
    )
}

/// Get Channel Authentication Capabilities.
fn auth_caps(data: &[u8]) -> (Completion, Vec<u8>) {
    if data.len() < 2 {
        return (Completion::REQUEST_DATA_LENGTH_INVALID, Vec::new());
    }
    if !channel_ok(data[0]) || Privilege::from_level(data[1] & 0x0F).is_none() {
        return (Completion::INVALID_DATA_FIELD, Vec::new());
    }
    (
        Completion::OK,
        AuthCaps::strata(data[0] & 0x80 != 0).encode(),
    )
}

/// Get Channel Cipher Suites: 16 bytes of the record list per list index.
fn cipher_suites(data: &[u8], suites: &[CipherSuite]) -> (Completion, Vec<u8>) {
    if data.len() < 3 {
        return (Completion::REQUEST_DATA_LENGTH_INVALID, Vec::new());
    }
    if !channel_ok(data[0]) || data[1] != payload::IPMI {
        return (Completion::INVALID_DATA_FIELD, Vec::new());
    }
    let list = if data[2] & 0x80 != 0 {
        commands::cipher_suite_records(suites)
    } else {
        // "List supported algorithms": each algorithm byte, tagged, once.
        let mut algorithms = Vec::new();
        for suite in suites {
            let (auth, integrity, conf) = suite.algorithms();
            for b in [auth, 0x40 | integrity, 0x80 | conf] {
                if !algorithms.contains(&b) {
                    algorithms.push(b);
                }
            }
        }
        algorithms
    };
    let start = (data[2] & 0x3F) as usize * 16;
    let mut out = vec![commands::LAN_CHANNEL];
    out.extend(list.iter().skip(start).take(16));
    (Completion::OK, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeBmc;

    fn engine(options: ServerOptions) -> Engine {
        Engine::new(
            Credentials::new("admin", "password"),
            Arc::new(FakeBmc::default()),
            options,
        )
    }

    fn peer(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn open_request(console_session_id: u32) -> Vec<u8> {
        let rq = OpenSessionRequest {
            tag: 1,
            max_privilege: 4,
            console_session_id,
            algorithms: CipherSuite::Sha1Aes.algorithms(),
        };
        wire::encode_v2_plain(payload::OPEN_SESSION_REQUEST, &rq.encode())
    }

    fn open_status(answer: &[u8]) -> OpenSessionResponse {
        let v2 = wire::decode_v2(wire::split_rmcp(answer).unwrap().1).unwrap();
        OpenSessionResponse::decode(v2.payload).unwrap()
    }

    fn dummy_active() -> Active {
        let inputs = RakpInputs {
            suite: CipherSuite::Sha1Aes,
            console_session_id: 1,
            bmc_session_id: 2,
            console_random: [0; 16],
            bmc_random: [0; 16],
            bmc_guid: [0; 16],
            role: 4,
            username: b"admin".to_vec(),
        };
        Active {
            keys: SessionKeys::derive(CipherSuite::Sha1Aes, &[0; 20]),
            inputs,
            kuid: b"password".to_vec(),
            rakp4: Vec::new(),
            privilege: Privilege::User,
            limit: Privilege::Administrator,
            window: SeqWindow::default(),
            out_seq: 0,
            last: None,
        }
    }

    #[test]
    fn session_limit_and_idle_expiry() {
        let mut e = engine(ServerOptions {
            max_sessions: 2,
            idle_timeout: Duration::from_secs(60),
            ..ServerOptions::default()
        });
        let t0 = Instant::now();
        for (i, port) in [1000, 1001].into_iter().enumerate() {
            let at = t0 + Duration::from_millis(500 * i as u64);
            let rs = open_status(
                &e.handle(&open_request(i as u32 + 1), peer(port), at)
                    .unwrap(),
            );
            assert_eq!(rs.status, status::OK);
        }
        // A retransmission is answered the same, without a new session.
        let again = open_status(&e.handle(&open_request(1), peer(1000), t0).unwrap());
        assert_eq!(again.status, status::OK);
        assert_eq!(e.sessions.len(), 2);
        // Both are still in set-up: a third peer evicts the one that waited longest.
        let t1 = t0 + Duration::from_secs(1);
        let third = open_status(&e.handle(&open_request(3), peer(1002), t1).unwrap());
        assert_eq!(third.status, status::OK);
        assert_eq!(e.sessions.len(), 2);
        assert!(
            e.sessions.values().all(|s| s.console_id != 1),
            "the stalest went"
        );
        // Active sessions are not evicted: with the table full of them, a newcomer is refused
        // until they idle out.
        for s in e.sessions.values_mut() {
            s.stage = Stage::Active(Box::new(dummy_active()));
        }
        let full = open_status(&e.handle(&open_request(4), peer(1003), t1).unwrap());
        assert_eq!(full.status, status::INSUFFICIENT_RESOURCES);
        let later = t1 + Duration::from_secs(61);
        let ok = open_status(&e.handle(&open_request(4), peer(1003), later).unwrap());
        assert_eq!(ok.status, status::OK);
        assert_eq!(e.sessions.len(), 1);
        e.expire(later + Duration::from_secs(61));
        assert!(e.sessions.is_empty());
    }

    #[test]
    fn refuses_suite_zero_and_unknown_algorithms() {
        let mut e = engine(ServerOptions::default());
        let rq = OpenSessionRequest {
            tag: 1,
            max_privilege: 4,
            console_session_id: 9,
            algorithms: (0, 0, 0),
        };
        let dgram = wire::encode_v2_plain(payload::OPEN_SESSION_REQUEST, &rq.encode());
        let rs = open_status(&e.handle(&dgram, peer(1), Instant::now()).unwrap());
        assert_eq!(rs.status, status::NO_CIPHER_SUITE_MATCH);
        assert!(e.sessions.is_empty());
    }

    #[test]
    fn garbage_gets_no_answer() {
        let mut e = engine(ServerOptions::default());
        let now = Instant::now();
        assert!(e.handle(&[], peer(1), now).is_none());
        assert!(e.handle(&[6, 0, 0xFF, 7, 6, 0], peer(1), now).is_none());
        // An IPMI packet for a session that does not exist.
        let keys = SessionKeys::derive(CipherSuite::Sha1Aes, &[1; 20]);
        let msg = Message::request(netfn::CHASSIS, cmd::CHASSIS_CONTROL, 1, vec![0]);
        let dgram = rmcpplus::seal(&keys, payload::IPMI, 1234, 1, &msg.encode());
        assert!(e.handle(&dgram, peer(1), now).is_none());
    }

    #[test]
    fn pre_session_commands_in_both_wrappers() {
        let mut e = engine(ServerOptions::default());
        let now = Instant::now();
        let rq = Message::request(
            netfn::APP,
            cmd::GET_CHANNEL_AUTH_CAPABILITIES,
            1,
            commands::auth_caps_request(4),
        );
        let answer = e
            .handle(&wire::encode_v15(&rq.encode()), peer(1), now)
            .unwrap();
        let v15 = wire::decode_v15(wire::split_rmcp(&answer).unwrap().1).unwrap();
        let rs = Message::decode(v15.message).unwrap();
        assert_eq!(rs.data[0], 0);
        assert!(AuthCaps::decode(&rs.data[1..])
            .unwrap()
            .supports_rmcp_plus());

        let rq = Message::request(
            netfn::APP,
            cmd::GET_CHANNEL_CIPHER_SUITES,
            2,
            commands::cipher_suites_request(0),
        );
        let answer = e
            .handle(
                &wire::encode_v2_plain(payload::IPMI, &rq.encode()),
                peer(1),
                now,
            )
            .unwrap();
        let v2 = wire::decode_v2(wire::split_rmcp(&answer).unwrap().1).unwrap();
        let rs = Message::decode(v2.payload).unwrap();
        assert_eq!(rs.data[..2], [0, commands::LAN_CHANNEL]);
        assert_eq!(commands::parse_cipher_suite_ids(&rs.data[2..]), [17, 3]);

        // A v1.5 session login is not offered.
        let rq = Message::request(netfn::APP, 0x39, 3, vec![0x02, b'a']);
        let answer = e
            .handle(&wire::encode_v15(&rq.encode()), peer(1), now)
            .unwrap();
        let v15 = wire::decode_v15(wire::split_rmcp(&answer).unwrap().1).unwrap();
        assert_eq!(Message::decode(v15.message).unwrap().data, [0xC1]);
    }

    #[test]
    fn answers_asf_presence_ping() {
        let mut e = engine(ServerOptions::default());
        let pong = e
            .handle(&wire::asf_presence_ping(3), peer(1), Instant::now())
            .unwrap();
        assert!(wire::is_asf_pong(&pong, 3));
    }
}
