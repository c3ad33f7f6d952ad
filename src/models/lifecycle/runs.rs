//! Training runs: requested, queued, run one at a time, and what came of
//! each, kept in `runs.json` beside the registry (the newest 200).

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::store::{write_atomically, Locked, State};

const KEPT: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Queued,
    Running,
    /// Trained, gated and registered (whatever the gate decided).
    Succeeded,
    /// Stopped by an error; nothing was registered.
    Failed,
    /// The service stopped before the run finished; nothing was registered.
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TrainingRun {
    pub run_id: String,
    pub model: String,
    pub state: RunState,
    /// `admin`, `scheduler` or `cli`.
    pub requested_by: String,
    pub requested_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// The version it registered, and the state the gate gave it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<State>,
    /// The gate's reason, or the error that stopped the run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epochs_run: Option<usize>,
    /// The host and process that run it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
}

impl TrainingRun {
    /// A new run of `model`, waiting.
    pub fn queued(model: &str, requested_by: &str) -> Self {
        TrainingRun {
            run_id: uuid::Uuid::new_v4().to_string(),
            model: model.to_string(),
            state: RunState::Queued,
            requested_by: requested_by.to_string(),
            requested_at: Utc::now(),
            started_at: None,
            finished_at: None,
            seconds: None,
            version: None,
            outcome: None,
            reason: None,
            epochs_run: None,
            host: None,
            pid: None,
        }
    }
}

/// The runs file, shared by every process using the registry: each
/// change is made under a lock on the file as it is on disk.
pub struct Runs {
    path: PathBuf,
}

/// This machine's name.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer outlives the call and its length is passed.
    let ok = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0;
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    if ok {
        String::from_utf8_lossy(&buf[..end]).into_owned()
    } else {
        String::new()
    }
}

/// Whether process `pid` of this host is alive.
fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as libc::pid_t, 0) == 0 }
}

impl Runs {
    /// Opens the runs at `path`; those left queued or running by a process
    /// that is gone are marked interrupted.
    pub fn open(path: PathBuf) -> anyhow::Result<Self> {
        let runs = Runs { path };
        let host = hostname();
        runs.change(|list| {
            for run in list.iter_mut() {
                // A pid of ours is an earlier process's (as PID 1 in a
                // container); another host's runs are its own to judge.
                let here = run.host.as_deref().is_none_or(|h| h == host);
                let owner_gone = here
                    && run
                        .pid
                        .is_none_or(|pid| pid == std::process::id() || !alive(pid));
                if matches!(run.state, RunState::Queued | RunState::Running) && owner_gone {
                    run.state = RunState::Interrupted;
                    run.reason = Some("the service stopped before the run finished".into());
                }
            }
        })?;
        Ok(runs)
    }

    fn read(&self) -> Vec<TrainingRun> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %self.path.display(), error = %e, "unreadable training runs file; starting a new one");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        }
    }

    /// Applies `f` to the runs on disk and writes them back, under the lock.
    fn change<T>(&self, f: impl FnOnce(&mut Vec<TrainingRun>) -> T) -> anyhow::Result<T> {
        let _lock = Locked::take(&self.path.with_extension("lock"), true)?;
        let mut list = self.read();
        let out = f(&mut list);
        if list.len() > KEPT {
            let excess = list.len() - KEPT;
            list.drain(..excess);
        }
        write_atomically(&self.path, &serde_json::to_vec_pretty(&list)?)?;
        Ok(out)
    }

    /// Records a new run, owned by this process.
    pub fn add(&mut self, mut run: TrainingRun) -> anyhow::Result<()> {
        run.host = Some(hostname());
        run.pid = Some(std::process::id());
        self.change(|list| list.push(run))
    }

    pub fn update(&mut self, run_id: &str, change: impl FnOnce(&mut TrainingRun)) {
        let result = self.change(|list| {
            if let Some(run) = list.iter_mut().find(|r| r.run_id == run_id) {
                change(run);
            }
        });
        if let Err(e) = result {
            tracing::error!(
                error = format!("{e:#}"),
                "could not write the training runs file"
            );
        }
    }

    /// Newest first.
    pub fn list(&self) -> Vec<TrainingRun> {
        self.read().into_iter().rev().collect()
    }

    pub fn get(&self, run_id: &str) -> Option<TrainingRun> {
        self.read().into_iter().find(|r| r.run_id == run_id)
    }

    /// Whether a run of `model` is waiting or training.
    pub fn active(&self, model: &str) -> bool {
        self.read()
            .iter()
            .any(|r| r.model == model && matches!(r.state, RunState::Queued | RunState::Running))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, state: RunState) -> TrainingRun {
        TrainingRun {
            run_id: id.into(),
            state,
            ..TrainingRun::queued("m", "admin")
        }
    }

    #[test]
    fn runs_cut_short_by_a_stop_read_back_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.json");
        let mut runs = Runs::open(path.clone()).unwrap();
        runs.add(run("a", RunState::Succeeded)).unwrap();
        runs.add(run("b", RunState::Queued)).unwrap();
        runs.update("b", |r| r.state = RunState::Running);
        assert!(runs.active("m"));
        let reopened = Runs::open(path).unwrap();
        let states: Vec<_> = reopened
            .list()
            .into_iter()
            .map(|r| (r.run_id, r.state))
            .collect();
        assert_eq!(
            states,
            [
                ("b".to_string(), RunState::Interrupted),
                ("a".to_string(), RunState::Succeeded)
            ]
        );
        assert!(!reopened.active("m"));
    }
}
