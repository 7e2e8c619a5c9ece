//! The independent peers of the interoperability tests, shared by every crate that runs them:
//! this crate's `tests/ipmitool.rs` (ipmitool against `IpmiServer` over a `FakeBmc`) and
//! `strata-sim`'s `tests/ipmi.rs` (ipmitool against a simulated host's BMC).
//!
//! Compiled always, like `FakeBmc`: it only spawns a process, and keeping it out of `cfg(test)`
//! is what lets another crate's tests use it. Not for production paths: Strata's own driver
//! speaks IPMI natively (`IpmiClient`); see docs/baremetal-ipmi.md for why.

use std::net::SocketAddr;
use std::process::Output;
use std::time::Duration;

/// The variable that makes a missing ipmitool a test failure rather than a skip (CI sets it).
pub const REQUIRE_IPMITOOL: &str = "STRATA_REQUIRE_IPMITOOL";

/// For a test that needs the peer `what`: whether to run. Yes if `present`; if not, panics
/// when the environment variable `require` is `1` (CI), else prints a `SKIPPED` notice and
/// says no.
pub fn peer_available(what: &str, present: bool, require: &str) -> bool {
    if present {
        return true;
    }
    if std::env::var(require).as_deref() == Ok("1") {
        panic!("{what} is required ({require}=1) but not available");
    }
    eprintln!("SKIPPED: {what} is not available (set {require}=1 to make this a failure)");
    false
}

/// Whether an ipmitool test should run: [`peer_available`] for `ipmitool -V`, required by
/// [`REQUIRE_IPMITOOL`].
pub fn ipmitool_available() -> bool {
    let present = std::process::Command::new("ipmitool")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success());
    peer_available("ipmitool", present, REQUIRE_IPMITOOL)
}

/// `ipmitool -I lanplus` aimed at one BMC:
/// `ipmitool -I lanplus -H HOST -p PORT -U USER -P PASSWORD [-C SUITE] ARGS...`.
#[derive(Clone, Debug)]
pub struct Ipmitool {
    pub addr: SocketAddr,
    pub username: String,
    pub password: String,
    /// `-C`: the cipher suite; `None` leaves the choice to ipmitool.
    pub suite: Option<u8>,
    /// How long one invocation may take before it is killed and reported.
    pub deadline: Duration,
}

impl Ipmitool {
    pub fn new(addr: SocketAddr, username: &str, password: &str) -> Ipmitool {
        Ipmitool {
            addr,
            username: username.to_string(),
            password: password.to_string(),
            suite: None,
            deadline: Duration::from_secs(60),
        }
    }

    /// The same BMC with `-C suite` (or ipmitool's choice).
    pub fn with_suite(mut self, suite: Option<u8>) -> Ipmitool {
        self.suite = suite;
        self
    }

    /// The same BMC, logging in with `password`.
    pub fn with_password(mut self, password: &str) -> Ipmitool {
        self.password = password.to_string();
        self
    }

    /// Runs ipmitool with `args` (split on whitespace) and returns how it ended.
    ///
    /// # Panics
    ///
    /// If ipmitool cannot be started or does not exit within the deadline (test code).
    pub async fn run(&self, args: &str) -> Output {
        let mut cmd = tokio::process::Command::new("ipmitool");
        cmd.args(["-I", "lanplus", "-H", &self.addr.ip().to_string()])
            .args(["-p", &self.addr.port().to_string()])
            .args(["-U", &self.username, "-P", &self.password]);
        if let Some(suite) = self.suite {
            cmd.args(["-C", &suite.to_string()]);
        }
        cmd.args(args.split_whitespace()).kill_on_drop(true);
        tokio::time::timeout(self.deadline, cmd.output())
            .await
            .unwrap_or_else(|_| panic!("ipmitool {args}: no exit within {:?}", self.deadline))
            .unwrap_or_else(|e| panic!("ipmitool {args}: {e}"))
    }

    /// Runs ipmitool with `args` and returns its stdout.
    ///
    /// # Panics
    ///
    /// As [`Ipmitool::run`], and if ipmitool fails (with its output in the message).
    pub async fn ok(&self, args: &str) -> String {
        let out = self.run(args).await;
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "ipmitool {args} (suite {:?}): {}\nstdout: {stdout}\nstderr: {}",
            self.suite,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}
