//! Statements running now, by backend (connection) pid: listed in
//! `system.running_queries` and stopped by `pg_cancel_backend(pid)` (57014 for the
//! statement, the connection stays), as PostgreSQL's `pg_stat_activity` and
//! `pg_cancel_backend` do.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array};
use datafusion::arrow::datatypes::DataType;
use datafusion::logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf};
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// One running statement.
#[derive(Debug, Clone)]
pub struct Running {
    pub pid: i32,
    pub database: String,
    pub user: String,
    pub query: String,
    /// ns since the epoch.
    pub started: i64,
    cancel: CancellationToken,
}

/// The running statements of a server.
#[derive(Debug, Default)]
pub struct Activity {
    running: Mutex<BTreeMap<i32, (u64, Running)>>,
    next: std::sync::atomic::AtomicU64,
}

/// Keeps a statement listed until dropped (when its last row is sent).
#[derive(Debug)]
pub struct Registration {
    activity: Arc<Activity>,
    pid: i32,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut running = self.activity.running.lock();
        if running.get(&self.pid).is_some_and(|(id, _)| *id == self.id) {
            running.remove(&self.pid);
        }
    }
}

impl Activity {
    /// Lists a statement that starts now; `cancel` stops it.
    pub fn start(
        self: &Arc<Self>,
        pid: i32,
        database: &str,
        user: &str,
        query: &str,
        cancel: CancellationToken,
    ) -> Registration {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let started = crate::clock::Clock::now_nanos(&crate::clock::SystemClock);
        let running = Running {
            pid,
            database: database.to_string(),
            user: user.to_string(),
            query: query.to_string(),
            started,
            cancel,
        };
        self.running.lock().insert(pid, (id, running));
        Registration {
            activity: self.clone(),
            pid,
            id,
        }
    }

    /// Stops the statement backend `pid` runs; whether there was one.
    pub fn cancel(&self, pid: i32) -> bool {
        match self.running.lock().get(&pid) {
            Some((_, r)) => {
                r.cancel.cancel();
                true
            }
            None => false,
        }
    }

    pub fn list(&self) -> Vec<Running> {
        self.running
            .lock()
            .values()
            .map(|(_, r)| r.clone())
            .collect()
    }

    /// `pg_cancel_backend(pid) → boolean`.
    pub fn cancel_udf(self: &Arc<Self>) -> ScalarUDF {
        let activity = self.clone();
        create_udf(
            "pg_cancel_backend",
            vec![DataType::Int64],
            DataType::Boolean,
            Volatility::Volatile,
            Arc::new(move |args: &[ColumnarValue]| {
                let pids = ColumnarValue::values_to_arrays(args)?;
                let pids = pids[0]
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .ok_or_else(|| {
                        datafusion::error::DataFusionError::Plan(
                            "pg_cancel_backend takes an integer pid".into(),
                        )
                    })?;
                let done: BooleanArray = pids
                    .iter()
                    .map(|p| p.map(|p| i32::try_from(p).is_ok_and(|p| activity.cancel(p))))
                    .collect();
                let array: ArrayRef = Arc::new(done);
                Ok(ColumnarValue::Array(array))
            }),
        )
    }
}
