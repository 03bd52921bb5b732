//! Every task a server spawns, tracked, so that shutdown can stop them in order and wait
//! for them with a deadline (as influxdb3's shutdown manager and mini-redis' broadcast do).
//!
//! [`Tasks`] holds two groups. The *front* group is the listeners and their connections:
//! [`Tasks::accepting`] is cancelled first (listeners stop accepting; HTTP finishes the
//! requests in flight), then [`Tasks::connections`] (Postgres sessions end, as
//! PostgreSQL's fast shutdown ends them). The *background* group is everything else —
//! scrapes, discovery, alert evaluations and notifications — stopped by
//! [`Tasks::background`] once the front is drained, so no write is cut off while a client
//! still waits for its answer. A leaf: it imports nothing of Sundial.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Live tasks of one group, by name.
#[derive(Debug)]
struct Group {
    live: watch::Sender<usize>,
    names: Mutex<BTreeMap<&'static str, usize>>,
}

impl Group {
    fn new() -> Arc<Group> {
        Arc::new(Group {
            live: watch::channel(0).0,
            names: Mutex::new(BTreeMap::new()),
        })
    }

    fn spawn<F>(self: &Arc<Self>, name: &'static str, future: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.live.send_modify(|n| *n += 1);
        *self.names.lock().entry(name).or_insert(0) += 1;
        let guard = Done {
            group: self.clone(),
            name,
        };
        tokio::spawn(async move {
            let _done = guard;
            future.await
        })
    }

    /// Waits until no task of the group runs; `false` if `timeout` passed first.
    async fn wait(&self, timeout: Duration) -> bool {
        let mut rx = self.live.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|n| *n == 0))
            .await
            .is_ok()
    }

    fn running(&self) -> Vec<(&'static str, usize)> {
        self.names
            .lock()
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| (*k, *n))
            .collect()
    }
}

/// Counts a task out of its group when it ends (or is aborted).
struct Done {
    group: Arc<Group>,
    name: &'static str,
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(n) = self.group.names.lock().get_mut(self.name) {
            *n = n.saturating_sub(1);
        }
        self.group.live.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A server's tasks and the signals that stop them; cheap to clone.
#[derive(Debug, Clone)]
pub struct Tasks {
    front: Arc<Group>,
    background_group: Arc<Group>,
    accepting: CancellationToken,
    connections: CancellationToken,
    background: CancellationToken,
}

impl Default for Tasks {
    fn default() -> Self {
        Tasks::new()
    }
}

/// What a shutdown left behind.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Leftovers {
    /// Front tasks (listeners, connections) still running at the deadline.
    pub front: Vec<(&'static str, usize)>,
    /// Background tasks still running at the deadline.
    pub background: Vec<(&'static str, usize)>,
}

impl Tasks {
    pub fn new() -> Tasks {
        Tasks {
            front: Group::new(),
            background_group: Group::new(),
            accepting: CancellationToken::new(),
            connections: CancellationToken::new(),
            background: CancellationToken::new(),
        }
    }

    /// Cancelled when listeners must stop accepting.
    pub fn accepting(&self) -> CancellationToken {
        self.accepting.clone()
    }

    /// Cancelled when open connections must end.
    pub fn connections(&self) -> CancellationToken {
        self.connections.clone()
    }

    /// Cancelled when background work must stop.
    pub fn background(&self) -> CancellationToken {
        self.background.clone()
    }

    /// Spawns a listener or a connection.
    pub fn spawn_front<F>(&self, name: &'static str, future: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.front.spawn(name, future)
    }

    /// Spawns background work (a scrape target, a watcher, an evaluation, a delivery).
    pub fn spawn<F>(&self, name: &'static str, future: F) -> tokio::task::JoinHandle<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.background_group.spawn(name, future)
    }

    /// Background tasks running now, by name.
    pub fn running(&self) -> Vec<(&'static str, usize)> {
        self.background_group.running()
    }

    /// Stops everything in order — stop accepting, end connections, wait for the front
    /// group; stop background work, wait for it — each wait bounded by `deadline`
    /// (shared by both). Returns what was still running when time ran out.
    pub async fn shutdown(&self, deadline: Duration) -> Leftovers {
        let until = tokio::time::Instant::now() + deadline;
        let left = || until.saturating_duration_since(tokio::time::Instant::now());
        self.accepting.cancel();
        self.connections.cancel();
        let mut out = Leftovers::default();
        if !self.front.wait(left()).await {
            out.front = self.front.running();
        }
        self.background.cancel();
        if !self.background_group.wait(left()).await {
            out.background = self.background_group.running();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn shutdown_waits_for_tasks_in_order() {
        let tasks = Tasks::new();
        let order = Arc::new(Mutex::new(Vec::new()));
        let (o, stop) = (order.clone(), tasks.background());
        tasks.spawn("worker", async move {
            stop.cancelled().await;
            o.lock().push("background");
        });
        let (o, stop) = (order.clone(), tasks.accepting());
        tasks.spawn_front("listener", async move {
            stop.cancelled().await;
            o.lock().push("front");
        });
        assert_eq!(tasks.running(), vec![("worker", 1)]);
        let left = tasks.shutdown(Duration::from_secs(5)).await;
        assert_eq!(left, Leftovers::default());
        assert_eq!(*order.lock(), vec!["front", "background"]);
        assert!(tasks.running().is_empty());
    }

    #[tokio::test]
    async fn a_stuck_task_is_reported_at_the_deadline() {
        let tasks = Tasks::new();
        tasks.spawn("stuck", std::future::pending());
        let left = tasks.shutdown(Duration::from_millis(50)).await;
        assert_eq!(left.background, vec![("stuck", 1)]);
    }
}
