//! A bounded pool of workers driving rows (servers, bare-metal nodes) by id: at most
//! `parallel` tasks, each taking ids one after another; the rest wait in line as ids, not as
//! parked futures (a task per row holds its whole future while it waits: 75,000 pending
//! servers took 3.5 GiB that way).
//! An id already being driven is not driven twice at once: a request for it meanwhile makes
//! its worker drive it once more when done.

use futures::future::BoxFuture;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

type Job = Arc<dyn Fn(String) -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Default)]
struct State {
    /// Ids being driven or waiting; `true` when asked for again meanwhile.
    inflight: HashMap<String, bool>,
    waiting: VecDeque<String>,
    workers: usize,
}

/// The pool.
#[derive(Clone)]
pub struct WorkQueue {
    state: Arc<Mutex<State>>,
    parallel: usize,
    job: Job,
}

impl WorkQueue {
    pub fn new(parallel: usize, job: Job) -> WorkQueue {
        WorkQueue {
            state: Default::default(),
            parallel: parallel.max(1),
            job,
        }
    }

    /// Whether nothing is being driven or waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drives `id` soon (must be called within a tokio runtime).
    pub fn push(&self, id: String) {
        {
            let mut q = self.state.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(again) = q.inflight.get_mut(&id) {
                *again = true;
                return;
            }
            q.inflight.insert(id.clone(), false);
            if q.workers >= self.parallel {
                q.waiting.push_back(id);
                return;
            }
            q.workers += 1;
        }
        let this = self.clone();
        tokio::spawn(async move { this.work(id).await });
    }

    async fn work(self, first: String) {
        let mut id = first;
        loop {
            (self.job)(id.clone()).await;
            let mut q = self.state.lock().unwrap_or_else(|p| p.into_inner());
            match q.inflight.get_mut(&id) {
                Some(again) if *again => {
                    *again = false;
                    continue;
                }
                _ => {
                    q.inflight.remove(&id);
                }
            }
            match q.waiting.pop_front() {
                Some(next) => {
                    if let Some(again) = q.inflight.get_mut(&next) {
                        *again = false;
                    }
                    id = next;
                }
                None => {
                    q.workers -= 1;
                    return;
                }
            }
        }
    }

    /// Ids being driven or waiting.
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .inflight
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    #[tokio::test]
    async fn bounded_and_every_id_driven() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(Mutex::new(Vec::<String>::new()));
        let (r, m, d) = (running.clone(), most.clone(), done.clone());
        let q = WorkQueue::new(
            3,
            Arc::new(move |id: String| {
                let (r, m, d) = (r.clone(), m.clone(), d.clone());
                Box::pin(async move {
                    let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(now, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                    d.lock().unwrap().push(id);
                    r.fetch_sub(1, Ordering::SeqCst);
                })
            }),
        );
        for i in 0..50 {
            q.push(format!("n{i}"));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !q.is_empty() {
            assert!(Instant::now() < deadline, "queue never drained");
            tokio::task::yield_now().await;
        }
        assert!(most.load(Ordering::SeqCst) <= 3);
        let mut got = done.lock().unwrap().clone();
        got.sort();
        got.dedup();
        assert_eq!(got.len(), 50);
    }
}
