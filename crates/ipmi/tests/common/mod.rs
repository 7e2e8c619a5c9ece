//! What the interoperability tests share beyond `strata_ipmi::interop` (skipping or failing
//! when the independent peer is not installed, running ipmitool): polling with a deadline.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

/// Polls `check` until it returns `Some` or `within` passes.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
